import type { Readable } from 'node:stream';
import { digestOf, type Digest, type DigestAlgorithm } from '../oci/digest.js';
import type { StorageDriver } from './driver.js';
import { blobDataPath } from './layout.js';

/** The global content-addressed blob store: bytes by digest, shared by every repository. */
export class BlobStore {
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

  /** Reads a small blob whole (manifests, configs). */
  read(d: Digest): Promise<Buffer | null> {
    return this.driver.getContent(blobDataPath(d));
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
