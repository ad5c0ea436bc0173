import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { parseManifest, referencedBlobs } from '../oci/manifest.js';
import type { RepositoryName } from '../oci/name.js';
import type { BlobStore } from '../storage/blobs.js';
import type { RepositoryStore } from '../storage/repository.js';
import type { UploadStore } from '../storage/uploads.js';
import { manifestClaims } from '../gc/claim.js';
import type { ImageDestination, RawManifest } from './transport.js';

/** What a storage destination writes with, besides the repository and the blob store. */
export interface StorageDestinationOptions {
  uploads: UploadStore;
  /** Claims digests against garbage collection before relying on them (`gc/claim.ts`), as a push does. */
  claim: (digests: Iterable<Digest>) => Promise<void>;
  tag?: string;
  onChange?: () => void;
}

/**
 * Writes an image straight into this registry's storage (a mirror job's default destination): no HTTP
 * round trip, the same verification as a push (each blob's digest checked before it becomes visible), and
 * the same claims, so a collector never deletes what the image is about to name.
 */
export class StorageDestination implements ImageDestination {
  readonly description: string;
  readonly tag: string | undefined;

  constructor(
    private readonly repo: RepositoryStore,
    private readonly blobs: BlobStore,
    private readonly options: StorageDestinationOptions,
  ) {
    this.tag = options.tag;
    this.description = `storage:${repo.name}${this.tag ? `:${this.tag}` : ''}`;
  }

  async hasBlob(d: Descriptor): Promise<boolean> {
    await this.options.claim([d.digest]);
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
    const uploads = this.options.uploads;
    const id = await uploads.start(name);
    try {
      await uploads.append(name, id, body, 0, d.size);
      await this.options.claim([d.digest]);
      await uploads.finish(name, id, d.digest);
    } catch (e) {
      await uploads.cancel(name, id).catch(() => undefined);
      throw e;
    }
    await this.repo.linkBlob(d.digest);
  }

  async putManifest(m: RawManifest, tag?: string): Promise<void> {
    const parsed = parseManifest(m.bytes, m.mediaType);
    await this.options.claim(manifestClaims(m.digest, parsed));
    // A claim that met a sweep waited for it: what the sweep took must come again, not be named by a manifest.
    if (parsed.kind === 'image') {
      for (const b of referencedBlobs(parsed)) {
        if ((await this.repo.blobSize(b.digest)) === null)
          throw new Error(
            `manifest ${m.digest}: blob ${b.digest} was deleted by garbage collection while copying: copy the image again`,
          );
      }
    }
    await this.repo.putManifest(m.bytes, parsed.subject?.digest);
    if (tag) await this.repo.tag(tag, m.digest);
    this.options.onChange?.();
  }

  async commit(): Promise<void> {}

  async close(): Promise<void> {}
}
