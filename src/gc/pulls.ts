import { isDigest, type Digest } from '../oci/digest.js';
import { isTag, type RepositoryName } from '../oci/name.js';
import type { StorageDriver } from '../storage/driver.js';
import { checkRepositoryName } from '../storage/layout.js';

// The pull-time record, shared by the recorder (registry) and its readers (retention, eviction, du):
// `_sluice/pulls/<repository>/_nodes/<node>.json`, one object per repository and node, so nodes on one bucket
// never write the same object. A repository path component never starts with `_`, so `_nodes` cannot clash
// with a nested repository's folder.
const PULLS_ROOT = 'docker/registry/v2/_sluice/pulls';

/** A node's name, as it appears in its pull file's name. */
export const NODE_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** A pull file bigger than this is ignored by readers; writers drop their oldest entries to stay under it. */
export const PULL_FILE_LIMIT = 1024 * 1024;

/** Last pull per tag and per manifest digest of one repository (epoch ms), merged over every node. */
export interface PullTimes {
  tags: Map<string, number>;
  manifests: Map<Digest, number>;
}

/** Empty pull times. */
export function noPulls(): PullTimes {
  return { tags: new Map(), manifests: new Map() };
}

/** The folder of a repository's per-node pull files. */
export function pullNodesPath(repository: RepositoryName): string {
  return `${PULLS_ROOT}/${checkRepositoryName(repository)}/_nodes`;
}

/** One node's pull file of a repository. */
export function nodePullsPath(repository: RepositoryName, node: string): string {
  if (!NODE_NAME.test(node)) throw new Error(`invalid node name ${JSON.stringify(node.slice(0, 100))}`);
  return `${pullNodesPath(repository)}/${node}.json`;
}

function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads one pull file's bytes; null when they are not JSON of the record's shape. Entries with a bad tag,
 * digest or time are skipped one by one: a file another node (or anyone with bucket access) wrote is input.
 */
export function parsePullFile(bytes: Buffer): PullTimes | null {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  if (!isPlainObject(raw)) return null;
  const out = noPulls();
  const { tags, manifests } = raw;
  if (isPlainObject(tags)) for (const [t, at] of Object.entries(tags)) if (isTag(t) && isTime(at)) out.tags.set(t, at);
  if (isPlainObject(manifests)) {
    for (const [d, at] of Object.entries(manifests)) if (isDigest(d) && isTime(at)) out.manifests.set(d, at);
  }
  return out;
}

/** Merges `from` into `into`, keeping the later time per tag and per digest; returns `into`. */
export function mergePulls(into: PullTimes, from: PullTimes): PullTimes {
  for (const [t, at] of from.tags) if (at > (into.tags.get(t) ?? 0)) into.tags.set(t, at);
  for (const [d, at] of from.manifests) if (at > (into.manifests.get(d) ?? 0)) into.manifests.set(d, at);
  return into;
}

/**
 * The JSON of a pull file, within `limit` bytes: when the entries do not fit, the least recently pulled are
 * left out (a tag nobody pulled for longest is the one retention would judge oldest anyway).
 */
export function serializePulls(times: PullTimes, limit = PULL_FILE_LIMIT): Buffer {
  const entries = [
    ...[...times.tags].map(([k, at]) => ({ tag: true, k, at })),
    ...[...times.manifests].map(([k, at]) => ({ tag: false, k, at })),
  ].sort((a, b) => b.at - a.at);
  // `{"tags":{},"manifests":{}}` plus, per entry, `"key":time,`; keys are ASCII by their grammars.
  let size = 26;
  const tags: Record<string, number> = {};
  const manifests: Record<string, number> = {};
  for (const e of entries) {
    size += e.k.length + String(e.at).length + 4;
    if (size > limit) break;
    (e.tag ? tags : manifests)[e.k] = e.at;
  }
  return Buffer.from(JSON.stringify({ tags, manifests }));
}

/** Reads an object of at most `limit` bytes; null when absent or larger (reading stops at the bound). */
async function readBounded(driver: StorageDriver, path: string, limit: number): Promise<Buffer | null> {
  const info = await driver.stat(path);
  if (!info || info.isDirectory || info.size > limit) return null;
  const body = await driver.reader(path);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      // The object may have been replaced by a bigger one since the stat.
      if (size > limit) return null;
      chunks.push(chunk as Buffer);
    }
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks);
}

/** One node's recorded pull times of a repository; null when it has no readable file. */
export async function readNodePulls(
  driver: StorageDriver,
  repository: RepositoryName,
  node: string,
): Promise<PullTimes | null> {
  const bytes = await readBounded(driver, nodePullsPath(repository, node), PULL_FILE_LIMIT).catch(() => null);
  return bytes ? parsePullFile(bytes) : null;
}

/** Writes one node's pull file of a repository (the only file that node ever writes there). */
export async function writeNodePulls(
  driver: StorageDriver,
  repository: RepositoryName,
  node: string,
  times: PullTimes,
): Promise<void> {
  // Bookkeeping a crash may lose (one batch of pull times): no flushes to make it durable.
  await driver.putContent(nodePullsPath(repository, node), serializePulls(times), { durable: false });
}

/** Reads the merged pull times of a repository; empty maps when none were recorded. */
export async function readPulls(driver: StorageDriver, repository: RepositoryName): Promise<PullTimes> {
  const merged = noPulls();
  const names = await driver.list(pullNodesPath(repository));
  for (const name of names) {
    const node = name.endsWith('.json') ? name.slice(0, -'.json'.length) : '';
    if (!NODE_NAME.test(node)) continue;
    const times = await readNodePulls(driver, repository, node);
    if (times) mergePulls(merged, times);
  }
  return merged;
}
