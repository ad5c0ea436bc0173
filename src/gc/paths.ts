import { parseDigest, type Digest } from '../oci/digest.js';

// The collector's own records. They live under a `_`-prefixed folder of the v2 root: Distribution walks only
// `blobs/` and `repositories/`, so it neither lists nor deletes them, and every node on one bucket sees them.
const GC_ROOT = 'docker/registry/v2/_sluice/gc';

/** The folder of candidate records: one small object per digest found unused, holding when it was first found. */
export const candidatesRoot = `${GC_ROOT}/candidates`;

/**
 * The folder of deletion markers: one object per algorithm and two-hex prefix (`<alg>/<xx>`), listing the hex of
 * every digest of that shard the collector is deleting right now, one a line. One durable write per shard, not
 * per digest: a sweep of 100,000 digests writes at most 256 markers per algorithm.
 */
export const deletingRoot = `${GC_ROOT}/deleting`;

/**
 * Present while the collector has candidate records or deletion markers in storage: one object a claim reads
 * (at most once per few seconds per node) instead of two per digest when nothing is in play.
 */
export const activePath = `${GC_ROOT}/active`;

/**
 * The heartbeat of a sweep: rewritten every few seconds while deletion markers stand, so that a claim can
 * tell a sweep in progress, however long, from the markers a dead collector left.
 */
export const heartbeatPath = `${GC_ROOT}/sweeping`;

/** The lease that makes one collector at a time on a shared storage. */
export const leasePath = `${GC_ROOT}/lease`;

function digestPath(root: string, d: Digest): string {
  const { algorithm, hex } = parseDigest(d);
  return `${root}/${algorithm}/${hex}`;
}

/** The candidate record of a digest. */
export function candidatePath(d: Digest): string {
  return digestPath(candidatesRoot, d);
}

/** The deletion marker (shard) that lists a digest while it is being deleted. */
export function deletingPath(d: Digest): string {
  const { algorithm, hex } = parseDigest(d);
  return `${deletingRoot}/${algorithm}/${hex.slice(0, 2)}`;
}
