import type { Digest } from '../oci/digest.js';
import { referencedBlobs, type Manifest } from '../oci/manifest.js';
import { limiter } from '../copy/limit.js';
import type { StorageDriver } from '../storage/driver.js';
import { candidatePath, deletingPath } from './paths.js';

/** Digests claimed at once by one request. */
const CLAIMS_AT_ONCE = 16;
/** How long a claim waits for a collector to finish deleting a digest before it gives up. */
const WAIT_MS = 60_000;
/** A deletion marker this old belongs to a collector that died mid-sweep (a sweep's delete step takes seconds). */
export const STALE_MARKER_MS = 10 * 60_000;

/** Raised when a collector holds a digest longer than a claim may wait. */
export class ClaimTimeoutError extends Error {
  override readonly name = 'ClaimTimeoutError';
}

/**
 * Marks digests as in use before the caller checks that they exist and relies on them. Every writer into
 * the registry's storage claims through one `Claims` per storage: the push routes (a blob HEAD, a mount, an
 * upload's end, a manifest PUT), cache fills and mirror jobs. A claim removes each digest's candidate
 * record, then waits while a collector's deletion marker for it is present.
 *
 * Why this is enough, also with several nodes on one bucket: the collector writes the marker, then reads
 * the candidate record again, and deletes only when the record is unchanged. A claim removes the record,
 * then looks for the marker. If it finds none, its removal came before the marker and so before the
 * collector's second read, which then keeps the digest. If it finds one, it waits until the sweep is over;
 * the caller's existence check that follows sees the digest either kept or gone, never half gone.
 */
export class Claims {
  constructor(private readonly driver: StorageDriver) {}

  /** Claims digests (see the class); throws `ClaimTimeoutError` when a sweep holds one too long. */
  async claim(digests: Iterable<Digest>): Promise<void> {
    // An index may name thousands of children: a bounded number of storage calls at once.
    const limit = limiter(CLAIMS_AT_ONCE);
    await Promise.all([...new Set(digests)].map((d) => limit(() => this.claimOne(d))));
  }

  private async claimOne(d: Digest): Promise<void> {
    const driver = this.driver;
    // A stat first: nearly every digest has no record, and a stat is cheaper than a delete on a bucket.
    if (await driver.stat(candidatePath(d))) await driver.delete(candidatePath(d));
    const started = Date.now();
    for (let pause = 20; ; pause = Math.min(pause * 2, 500)) {
      const marker = await driver.stat(deletingPath(d));
      if (!marker || Date.now() - marker.modified.getTime() > STALE_MARKER_MS) return;
      if (Date.now() - started > WAIT_MS) throw new ClaimTimeoutError(`garbage collection still holds ${d}: try again`);
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}

/** What storing a manifest relies on: its own digest and every blob or child manifest it names. */
export function manifestClaims(digest: Digest, m: Manifest): Digest[] {
  return [digest, ...(m.kind === 'image' ? referencedBlobs(m) : m.manifests).map((d) => d.digest)];
}
