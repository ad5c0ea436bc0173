import type { Digest } from '../oci/digest.js';
import { limiter } from '../async/limit.js';
import type { StorageDriver } from '../storage/driver.js';
import { listLinkedDigests } from '../storage/links.js';
import { candidatePath, candidatesRoot, deletingPath, deletingRoot } from './paths.js';

/** Records read at once (one at a time, reading 100,000 of them took minutes). */
const READS_AT_ONCE = 16;

/** Candidate records by digest: when each digest was first found unused. */
export async function readCandidates(driver: StorageDriver): Promise<Map<Digest, number>> {
  const out = new Map<Digest, number>();
  const limit = limiter(READS_AT_ONCE);
  await Promise.all(
    (await listLinkedDigests(driver, candidatesRoot)).map((d) =>
      limit(async () => {
        const since = await readSince(driver, d);
        if (since !== null) out.set(d, since);
      }),
    ),
  );
  return out;
}

/** When a digest's candidate record says it was first found unused; null when there is no valid record. */
export async function readSince(driver: StorageDriver, d: Digest): Promise<number | null> {
  const b = await driver.getContent(candidatePath(d));
  const t = b ? Date.parse(b.toString('utf8').trim()) : NaN;
  return Number.isNaN(t) ? null : t;
}

/** Records a digest as unused since `since`. */
export function writeCandidate(driver: StorageDriver, d: Digest, since: number): Promise<void> {
  return driver.putContent(candidatePath(d), Buffer.from(new Date(since).toISOString()), { durable: false });
}

/** Forgets a candidate. */
export function dropCandidate(driver: StorageDriver, d: Digest): Promise<void> {
  return driver.delete(candidatePath(d));
}

/** Marks a digest as being deleted; durable, since a claim that misses it could rely on what goes. */
export function writeDeleting(driver: StorageDriver, d: Digest): Promise<void> {
  return driver.putContent(deletingPath(d), Buffer.from(new Date().toISOString()));
}

/** Removes a deletion marker. */
export function dropDeleting(driver: StorageDriver, d: Digest): Promise<void> {
  return driver.delete(deletingPath(d));
}

/** Digests with a deletion marker (a collector that died mid-sweep leaves them). */
export function listDeleting(driver: StorageDriver): Promise<Digest[]> {
  return listLinkedDigests(driver, deletingRoot);
}
