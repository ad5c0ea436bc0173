import { isDigest, type Digest } from '../oci/digest.js';
import { isTag, type RepositoryName } from '../oci/name.js';
import type { StorageDriver } from '../storage/driver.js';
import { checkRepositoryName } from '../storage/layout.js';

// The reader half of the pull-time record (issue 18). Each node writes its own file per repository, so several
// nodes on one bucket never write the same object; a repository path component never starts with `_`, so
// `_nodes` cannot clash with a nested repository.
const PULLS_ROOT = 'docker/registry/v2/_sluice/pulls';
/** A node file bigger than this is ignored: a bucket may hold anything. */
const NODE_FILE_LIMIT = 1024 * 1024;
const NODE = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** Last pull per tag and per manifest digest of one repository (epoch ms), merged over every node. */
export interface PullTimes {
  tags: Map<string, number>;
  manifests: Map<Digest, number>;
}

/** The folder of a repository's node files. */
export function pullsFolder(repository: RepositoryName): string {
  // Validated again here: the name becomes a path.
  return `${PULLS_ROOT}/${checkRepositoryName(repository)}/_nodes`;
}

/** The file one node writes for a repository. */
export function pullsNodePath(repository: RepositoryName, node: string): string {
  if (!NODE.test(node)) throw new Error(`invalid node name "${node}"`);
  return `${pullsFolder(repository)}/${node}.json`;
}

function keepLatest<K>(into: Map<K, number>, key: K, at: unknown): void {
  if (typeof at !== 'number' || !Number.isFinite(at)) return;
  if ((into.get(key) ?? -Infinity) < at) into.set(key, at);
}

/** Merges one node file's text into `out`; ignores whatever is malformed. */
function mergeNodeFile(bytes: Buffer, out: PullTimes): void {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    return;
  }
  if (typeof doc !== 'object' || doc === null) return;
  const { tags, manifests } = doc as { tags?: unknown; manifests?: unknown };
  if (typeof tags === 'object' && tags !== null && !Array.isArray(tags)) {
    for (const [t, at] of Object.entries(tags)) if (isTag(t)) keepLatest(out.tags, t, at);
  }
  if (typeof manifests === 'object' && manifests !== null && !Array.isArray(manifests)) {
    for (const [d, at] of Object.entries(manifests)) if (isDigest(d)) keepLatest(out.manifests, d, at);
  }
}

/** Reads the merged pull times of a repository; empty maps when none were recorded. */
export async function readPulls(driver: StorageDriver, repository: RepositoryName): Promise<PullTimes> {
  const out: PullTimes = { tags: new Map(), manifests: new Map() };
  const folder = pullsFolder(repository);
  for (const file of await driver.list(folder)) {
    if (!file.endsWith('.json') || !NODE.test(file.slice(0, -'.json'.length))) continue;
    const path = `${folder}/${file}`;
    const info = await driver.stat(path);
    if (!info || info.isDirectory || info.size > NODE_FILE_LIMIT) continue;
    const bytes = await driver.getContent(path);
    if (bytes && bytes.length <= NODE_FILE_LIMIT) mergeNodeFile(bytes, out);
  }
  return out;
}
