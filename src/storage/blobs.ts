import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestOf, type Digest, type DigestAlgorithm } from '../oci/digest.js';
import type { StorageDriver } from './driver.js';
import { blobDataPath } from './layout.js';

/** The global content-addressed blob store: bytes by digest, shared by every repository. */
export class BlobStore {
  /**
   * Small blobs (manifests) read recently, by digest. Content-addressed bytes never change, so serving
   * them from memory is safe; whether a repository still has them is decided by its links, read every time.
   */
  private readonly recent = new Map<Digest, Buffer>();
  private recentBytes = 0;
  private static readonly CACHE_ITEM_MAX = 64 * 1024;
  private static readonly CACHE_TOTAL_MAX = 16 * 1024 * 1024;

  constructor(private readonly driver: StorageDriver) {}

  /** The size of a stored blob, or null. */
  async size(d: Digest): Promise<number | null> {
    const info = await this.driver.stat(blobDataPath(d));
    return info && !info.isDirectory ? info.size : null;
  }

  /** Streams a stored blob, optionally a byte range of it. */
  open(d: Digest, offset?: number, length?: number): Promise<Readable> {
    return this.driver.reader(blobDataPath(d), offset, length);
  }

  /** Writes a stored blob (or a byte range of it) into `out`, the fastest way the driver knows. */
  async sendTo(d: Digest, out: Writable, offset: number, length: number): Promise<void> {
    if (this.driver.sendTo) return this.driver.sendTo(blobDataPath(d), out, offset, length);
    const body = await this.driver.reader(blobDataPath(d), offset, length);
    await pipeline(body, out, { end: false });
  }

  /** Reads a small blob whole (manifests, configs). */
  async read(d: Digest): Promise<Buffer | null> {
    const hit = this.recent.get(d);
    if (hit) {
      // Refresh its place so the map's insertion order stays least-recently-used first.
      this.recent.delete(d);
      this.recent.set(d, hit);
      return hit;
    }
    const bytes = await this.driver.getContent(blobDataPath(d));
    if (bytes && bytes.length <= BlobStore.CACHE_ITEM_MAX && !this.recent.has(d)) {
      this.recent.set(d, bytes);
      this.recentBytes += bytes.length;
      for (const [k, v] of this.recent) {
        if (this.recentBytes <= BlobStore.CACHE_TOTAL_MAX) break;
        this.recent.delete(k);
        this.recentBytes -= v.length;
      }
    }
    return bytes;
  }

  /** Stores small bytes under their digest, unless already there. */
  async put(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Promise<Digest> {
    const d = digestOf(bytes, algorithm);
    if ((await this.size(d)) !== bytes.length) await this.driver.putContent(blobDataPath(d), bytes);
    return d;
  }

  /** Moves a verified upload into place under its digest. */
  async adopt(fromPath: string, d: Digest): Promise<void> {
    await this.driver.move(fromPath, blobDataPath(d));
  }
}
