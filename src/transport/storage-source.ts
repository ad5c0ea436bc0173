import type { Readable } from 'node:stream';
import { isDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { effectiveArtifactType, parseManifest } from '../oci/manifest.js';
import type { BlobStore } from '../storage/blobs.js';
import type { RepositoryStore } from '../storage/repository.js';
import type { ImageSource, RawManifest } from './transport.js';
import { refuseDeclared, type ReadLimit } from './bounded.js';

function raw(bytes: Buffer, digest: Digest): RawManifest {
  return { bytes, digest, mediaType: parseManifest(bytes).mediaType };
}

/** Reads an image (and its signatures) straight from this registry's storage, for verification at pull time. */
export class StorageSource implements ImageSource {
  readonly description: string;

  constructor(
    private readonly repo: RepositoryStore,
    private readonly blobs: BlobStore,
    private readonly digest: Digest,
  ) {
    this.description = `storage:${repo.name}@${digest}`;
  }

  // Stored manifests passed the registry's size limit on the way in; a bound (signature discovery) is checked by size before the read.
  private async bounded(reference: string, limit?: ReadLimit): Promise<void> {
    if (limit?.maxBytes === undefined) return;
    const d = isDigest(reference) ? reference : await this.repo.resolveTag(reference);
    if (d)
      refuseDeclared(
        `${this.repo.name}: manifest ${reference}`,
        (await this.blobs.size(d)) ?? undefined,
        limit,
        'stored size',
      );
  }

  async getManifest(digest?: Digest, limit?: ReadLimit): Promise<RawManifest> {
    const d = digest ?? this.digest;
    await this.bounded(d, limit);
    const m = await this.repo.getManifest(d);
    if (!m) throw new Error(`${this.repo.name}: manifest ${d} is not stored`);
    return raw(m.bytes, m.digest);
  }

  async getBlob(d: Descriptor): Promise<Readable> {
    if ((await this.repo.blobSize(d.digest)) === null)
      throw new Error(`${this.repo.name}: blob ${d.digest} is not stored`);
    return this.blobs.open(d.digest);
  }

  async getTaggedManifest(tag: string, limit?: ReadLimit): Promise<RawManifest | undefined> {
    await this.bounded(tag, limit);
    const m = await this.repo.getManifest(tag);
    return m ? raw(m.bytes, m.digest) : undefined;
  }

  async listReferrers(subject: Digest): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    for (const d of await this.repo.referrers(subject)) {
      const m = await this.repo.getManifest(d);
      if (!m) continue;
      const parsed = parseManifest(m.bytes);
      const desc: Descriptor = { mediaType: parsed.mediaType, digest: d, size: m.bytes.length };
      const at = effectiveArtifactType(parsed);
      if (at) desc.artifactType = at;
      if (parsed.annotations) desc.annotations = parsed.annotations;
      out.push(desc);
    }
    return out;
  }

  async close(): Promise<void> {}
}
