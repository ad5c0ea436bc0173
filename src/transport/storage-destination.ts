import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import { parseManifest } from '../oci/manifest.js';
import type { RepositoryName } from '../oci/name.js';
import type { BlobStore } from '../storage/blobs.js';
import type { RepositoryStore } from '../storage/repository.js';
import type { UploadStore } from '../storage/uploads.js';
import type { ImageDestination, RawManifest } from './transport.js';

/**
 * Writes an image straight into this registry's storage (a mirror job's default destination): no HTTP
 * round trip, the same verification as a push (each blob's digest checked before it becomes visible).
 */
export class StorageDestination implements ImageDestination {
  readonly description: string;

  constructor(
    private readonly repo: RepositoryStore,
    private readonly blobs: BlobStore,
    private readonly uploads: UploadStore,
    readonly tag?: string,
    private readonly onChange?: () => void,
  ) {
    this.description = `storage:${repo.name}${tag ? `:${tag}` : ''}`;
  }

  async hasBlob(d: Descriptor): Promise<boolean> {
    if ((await this.repo.blobSize(d.digest)) !== null) return true;
    // Stored for another repository already: a link is all it takes.
    if ((await this.blobs.size(d.digest)) === d.size) {
      await this.repo.linkBlob(d.digest);
      return true;
    }
    return false;
  }

  async putBlob(d: Descriptor, body: Readable): Promise<void> {
    const name = this.repo.name as RepositoryName;
    const id = await this.uploads.start(name);
    try {
      await this.uploads.append(name, id, body, 0, d.size);
      await this.uploads.finish(name, id, d.digest);
    } catch (e) {
      await this.uploads.cancel(name, id).catch(() => undefined);
      throw e;
    }
    await this.repo.linkBlob(d.digest);
  }

  async putManifest(m: RawManifest, tag?: string): Promise<void> {
    const subject = parseManifest(m.bytes, m.mediaType).subject?.digest;
    await this.repo.putManifest(m.bytes, subject);
    if (tag) await this.repo.tag(tag, m.digest);
    this.onChange?.();
  }

  async commit(): Promise<void> {}

  async close(): Promise<void> {}
}
