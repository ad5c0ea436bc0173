import { parseDigest, type Digest } from '../oci/digest.js';
import { mapLimited } from '../async/limit.js';
import type { StorageDriver } from '../storage/driver.js';
import { listLinkedDigests } from '../storage/links.js';
import { candidatePath, candidatesRoot, deletingPath, deletingRoot } from './paths.js';

/** Records read at once (one at a time, reading 100,000 of them took minutes). */
const READS_AT_ONCE = 16;

/** Candidate records by digest: when each digest was first found unused. */
export async function readCandidates(driver: StorageDriver): Promise<Map<Digest, number>> {
  const out = new Map<Digest, number>();
  await mapLimited(await listLinkedDigests(driver, candidatesRoot), READS_AT_ONCE, async (d) => {
    const since = await readSince(driver, d);
    if (since !== null) out.set(d, since);
  });
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

/** Whether a digest still has its candidate record: only claims remove one while a pass runs, so present is untouched. */
export async function hasCandidate(driver: StorageDriver, d: Digest): Promise<boolean> {
  return (await driver.stat(candidatePath(d))) !== null;
}

/**
 * Marks digests as being deleted: one marker per shard (`deletingPath`) listing its digests' hex. Durable, since
 * a claim that misses a marker could rely on what goes. Returns the markers written, for `dropDeleting`.
 */
export async function writeDeleting(driver: StorageDriver, digests: Iterable<Digest>): Promise<string[]> {
  const shards = new Map<string, string[]>();
  for (const d of digests) {
    const path = deletingPath(d);
    const hexes = shards.get(path) ?? [];
    hexes.push(parseDigest(d).hex);
    shards.set(path, hexes);
  }
  const write = ([path, hexes]: [string, string[]]) => driver.putContent(path, Buffer.from(`${hexes.join('\n')}\n`));
  await mapLimited(shards, READS_AT_ONCE, write);
  return [...shards.keys()];
}

/** Whether a digest is listed in its shard's deletion marker now (`claim.ts`). */
export async function isDeleting(driver: StorageDriver, d: Digest): Promise<boolean> {
  const b = await driver.getContent(deletingPath(d));
  return b?.toString('latin1').split('\n').includes(parseDigest(d).hex) ?? false;
}

/** Removes deletion markers by path. */
export async function dropDeleting(driver: StorageDriver, paths: Iterable<string>): Promise<void> {
  await mapLimited(paths, READS_AT_ONCE, (p) => driver.delete(p));
}

/** The deletion markers present (a collector that died mid-sweep leaves them). */
export async function listDeleting(driver: StorageDriver): Promise<string[]> {
  const out: string[] = [];
  for (const alg of await driver.list(deletingRoot)) {
    if (!/^[a-z0-9]+$/.test(alg)) continue;
    for (const shard of await driver.list(`${deletingRoot}/${alg}`)) {
      if (/^[0-9a-f]{2}$/.test(shard)) out.push(`${deletingRoot}/${alg}/${shard}`);
    }
  }
  return out;
}
