import { isDigest, type Digest } from '../oci/digest.js';
import type { StorageDriver } from './driver.js';

/** Reads a Distribution link file (a digest as text); null when absent or not a digest. */
export async function readLink(driver: StorageDriver, path: string): Promise<Digest | null> {
  const b = await driver.getContent(path);
  if (!b) return null;
  const text = b.toString('utf8').trim();
  return isDigest(text) ? text : null;
}

/** Writes a Distribution link file. */
export function writeLink(driver: StorageDriver, path: string, d: Digest): Promise<void> {
  return driver.putContent(path, Buffer.from(d, 'utf8'));
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
