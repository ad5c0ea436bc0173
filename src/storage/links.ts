import { isDigest, type Digest } from '../oci/digest.js';
import type { StorageDriver } from './driver.js';
import { checkDigest } from './layout.js';

/**
 * Link contents by driver and path, trusted while a stat shows the same mtime and size: one stat costs a
 * quarter of the system calls of reading the file, and every manifest request reads one or two links.
 * Links are replaced by rename, so a change always brings a new mtime; a link written in the last
 * moments is not cached, since a second write within the same mtime tick could go unnoticed.
 */
const linkCache = new WeakMap<StorageDriver, Map<string, { mtime: number; size: number; digest: Digest }>>();
const STABLE_LINK_MS = 2000;
const LINK_CACHE_MAX = 50_000;

/** Reads a Distribution link file (a digest as text); null when absent or not a digest. */
export async function readLink(driver: StorageDriver, path: string): Promise<Digest | null> {
  // Only the filesystem gives objects an mtime that changes on every write.
  if (driver.name !== 'filesystem') return parseLink(await driver.getContent(path));
  let cache = linkCache.get(driver);
  if (!cache) {
    cache = new Map();
    linkCache.set(driver, cache);
  }
  const info = await driver.stat(path);
  if (!info || info.isDirectory) {
    cache.delete(path);
    return null;
  }
  const mtime = info.modified.getTime();
  const hit = cache.get(path);
  if (hit && hit.mtime === mtime && hit.size === info.size) return hit.digest;
  const bytes = await driver.getContent(path);
  const digest = parseLink(bytes);
  if (digest && bytes && bytes.length === info.size && Date.now() - mtime > STABLE_LINK_MS) {
    if (cache.size >= LINK_CACHE_MAX) cache.delete(cache.keys().next().value!);
    cache.set(path, { mtime, size: info.size, digest });
  } else {
    cache.delete(path);
  }
  return digest;
}

function parseLink(b: Buffer | null): Digest | null {
  if (!b) return null;
  const text = b.toString('utf8').trim();
  return isDigest(text) ? text : null;
}

/** Writes a Distribution link file; its content must be a digest, or a later read would take it for absent. */
export async function writeLink(driver: StorageDriver, path: string, d: Digest): Promise<void> {
  await driver.putContent(path, Buffer.from(checkDigest(d), 'utf8'));
}

/** Lists the digests under a `<alg>/<hex>/link` directory tree, as Distribution lays them out. */
export async function listLinkedDigests(driver: StorageDriver, dir: string): Promise<Digest[]> {
  const out: Digest[] = [];
  for (const alg of await driver.list(dir)) {
    for (const hex of await driver.list(`${dir}/${alg}`)) {
      const d = `${alg}:${hex}`;
      if (isDigest(d)) out.push(d);
    }
  }
  return out;
}
