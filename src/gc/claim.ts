import type { Digest } from '../oci/digest.js';
import { referencedBlobs, type Manifest } from '../oci/manifest.js';
import { limiter } from '../async/limit.js';
import type { StorageDriver } from '../storage/driver.js';
import { activePath, candidatePath, heartbeatPath } from './paths.js';
import { isDeleting } from './records.js';

/** Digests claimed at once by one request. */
const CLAIMS_AT_ONCE = 16;
/** How long a claim waits for a collector to finish deleting a digest before it gives up. */
const WAIT_MS = 60_000;
/** How often a sweeping collector rewrites its heartbeat. */
export const HEARTBEAT_MS = 2000;
/**
 * A heartbeat unchanged this long (on the claim's own clock) belongs to a collector that died mid-sweep. A
 * live collector stops deleting once its own last beat is half this old (see `Collector`), so a claim that
 * gives up on a heartbeat never meets a deletion after it.
 */
export const STALL_MS = 10 * HEARTBEAT_MS;

/**
 * How long a node trusts what it read of `active` (whether the collector has anything in play). It must be
 * shorter than `ACTIVE_SETTLE_MS`: see `Claims` and docs/gc.md.
 */
export const KNOWLEDGE_MS = 3000;
/** How long the collector lets `active` stand before it writes the first record or marker it announces. */
export const ACTIVE_SETTLE_MS = KNOWLEDGE_MS + 1000;

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
 *
 * A claim is free when nothing is in play: the collector writes `active` before its first candidate record or
 * marker, lets it stand `ACTIVE_SETTLE_MS`, and removes it only when none remains. A node reads `active` at most
 * once per `KNOWLEDGE_MS` (timed from before the read) and skips the per-digest lookups while it was absent. A
 * claim that skips therefore comes less than `KNOWLEDGE_MS` after `active` appeared, so before any record or
 * marker existed: it is the same as a claim that looked and found nothing.
 */
export class Claims {
  private knowledge: { inPlay: boolean; until: number } | undefined;
  private reading: Promise<boolean> | undefined;

  private readonly knowledgeMs: number;
  private readonly stallMs: number;

  constructor(
    private readonly driver: StorageDriver,
    options: { knowledgeMs?: number; stallMs?: number } = {},
  ) {
    this.knowledgeMs = options.knowledgeMs ?? KNOWLEDGE_MS;
    this.stallMs = options.stallMs ?? STALL_MS;
  }

  /** Claims digests (see the class); throws `ClaimTimeoutError` when a sweep holds one too long. */
  async claim(digests: Iterable<Digest>): Promise<void> {
    if (!(await this.inPlay())) return;
    // An index may name thousands of children: a bounded number of storage calls at once.
    const limit = limiter(CLAIMS_AT_ONCE);
    await Promise.all([...new Set(digests)].map((d) => limit(() => this.claimOne(d))));
  }

  /** Whether the collector may have records or markers in storage, read at most once per `knowledgeMs`. */
  private inPlay(): Promise<boolean> {
    const now = performance.now();
    if (this.knowledge && now < this.knowledge.until) return Promise.resolve(this.knowledge.inPlay);
    this.reading ??= (async () => {
      // Timed from before the read: the object may appear while the read is under way.
      const until = performance.now() + this.knowledgeMs;
      try {
        const inPlay = (await this.driver.stat(activePath)) !== null;
        this.knowledge = { inPlay, until };
        return inPlay;
      } finally {
        this.reading = undefined;
      }
    })();
    return this.reading;
  }

  private async claimOne(d: Digest): Promise<void> {
    const driver = this.driver;
    // A stat first: nearly every digest has no record, and a stat is cheaper than a delete on a bucket.
    if (await driver.stat(candidatePath(d))) await driver.delete(candidatePath(d));
    // Durations on this node's clock only: the marker's age says nothing, a sweep may run for hours.
    const started = performance.now();
    let beat: string | undefined;
    let beatSince = started;
    for (let pause = 20; ; pause = Math.min(pause * 2, 500)) {
      if (!(await isDeleting(driver, d))) return;
      const now = await driver.getContent(heartbeatPath);
      // No heartbeat: no sweep is running, the marker is a dead collector's leftover.
      if (!now) return;
      const text = now.toString('utf8');
      if (text !== beat) [beat, beatSince] = [text, performance.now()];
      else if (performance.now() - beatSince > this.stallMs) return;
      if (performance.now() - started > WAIT_MS)
        throw new ClaimTimeoutError(`garbage collection still holds ${d}: try again`);
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}

/** What storing a manifest relies on: its own digest and every blob or child manifest it names. */
export function manifestClaims(digest: Digest, m: Manifest): Digest[] {
  return [digest, ...(m.kind === 'image' ? referencedBlobs(m) : m.manifests).map((d) => d.digest)];
}
