import { createReadStream, createWriteStream } from 'node:fs';
import { MeasureStream } from '../transport/measure.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { digestOf } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { MediaType } from '../oci/mediatypes.js';
import type { ImageSource, RawManifest } from '../transport/transport.js';
import { VerifyStream } from './verify.js';

/** How layers are compressed when Sluice compresses them. */
export type CompressFormat = 'gzip' | 'zstd' | 'none';

type ZstdZlib = { createZstdCompress?: () => Transform };

/** True when this Node.js can write zstd (Node 22.15 and later; Node 20 cannot). */
export function canZstd(): boolean {
  return typeof (zlib as unknown as ZstdZlib).createZstdCompress === 'function';
}

/** True for the media types of an uncompressed layer, the only ones Sluice compresses. */
export function isUncompressedLayer(mediaType: string): boolean {
  return mediaType === MediaType.DockerLayer || mediaType === MediaType.OciLayer;
}

function compressor(format: 'gzip' | 'zstd'): Transform {
  if (format === 'gzip') return zlib.createGzip();
  const make = (zlib as unknown as ZstdZlib).createZstdCompress;
  if (!make) throw new Error(`zstd needs Node.js 22.15 or later (this is ${process.version}); use gzip or none`);
  return make();
}

/**
 * Compresses uncompressed layers into temporary files (streaming: the layer passes through once,
 * verified against its own digest, which for a Docker archive is its diff_id) and serves them as
 * blobs. The compressed digest is only known at the end, so a registry upload, which names the
 * digest, and a "already there?" check can only follow the spooling.
 */
export class LayerCompressor {
  private dir: Promise<string> | undefined;
  private readonly files = new Map<string, string>();
  private readonly jobs = new Map<string, Promise<{ digest: Descriptor['digest']; size: number }>>();
  private counter = 0;

  constructor(
    readonly format: 'gzip' | 'zstd',
    private readonly tmpDir: string = tmpdir(),
  ) {}

  /** The descriptor of `layer` compressed, with the media type for an OCI or a Docker manifest (compressing it once). */
  async compress(src: ImageSource, layer: Descriptor, oci: boolean): Promise<Descriptor> {
    let job = this.jobs.get(layer.digest);
    if (!job) {
      job = this.spool(src, layer);
      this.jobs.set(layer.digest, job);
    }
    const { digest, size } = await job;
    return { ...layer, mediaType: compressedType(this.format, oci), digest, size };
  }

  private async spool(src: ImageSource, layer: Descriptor): Promise<{ digest: Descriptor['digest']; size: number }> {
    this.dir ??= mkdtemp(join(this.tmpDir, 'sluice-compress-'));
    const file = join(await this.dir, `layer-${++this.counter}`);
    const measure = new MeasureStream();
    const body = await src.getBlob(layer);
    const verify = new VerifyStream(layer);
    body.once('error', (e) => verify.destroy(e));
    await pipeline(body, verify, compressor(this.format), measure, createWriteStream(file));
    const digest = measure.digester.digest();
    this.files.set(digest, file);
    return { digest, size: measure.bytes };
  }

  /** A compressed layer's bytes, or undefined when `d` is not one this compressor wrote. */
  blob(d: Descriptor): Readable | undefined {
    const file = this.files.get(d.digest);
    return file ? createReadStream(file, { highWaterMark: 1024 * 1024 }) : undefined;
  }

  /** Removes the temporary files. */
  async cleanup(): Promise<void> {
    const dir = await this.dir?.catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

function compressedType(format: 'gzip' | 'zstd', oci: boolean): string {
  if (format === 'zstd') return MediaType.OciLayerZstd;
  return oci ? MediaType.OciLayerGzip : MediaType.DockerLayerGzip;
}

const TO_OCI: Record<string, string> = {
  [MediaType.DockerManifest]: MediaType.OciManifest,
  [MediaType.DockerConfig]: MediaType.OciConfig,
  [MediaType.DockerLayer]: MediaType.OciLayer,
  [MediaType.DockerLayerGzip]: MediaType.OciLayerGzip,
};

/**
 * New image manifest bytes with the layers in `replaced` (by old digest) swapped for their compressed
 * descriptors; everything else in the document is kept. With `oci`, a Docker manifest becomes an OCI one.
 */
export function rewriteLayers(raw: RawManifest, replaced: Map<string, Descriptor>, oci: boolean): RawManifest {
  const doc = JSON.parse(raw.bytes.toString('utf8')) as {
    mediaType?: string;
    config: Descriptor;
    layers: Descriptor[];
  };
  doc.layers = doc.layers.map((l) => {
    const r = replaced.get(l.digest);
    return r ? { ...l, mediaType: r.mediaType, digest: r.digest, size: r.size } : l;
  });
  if (oci) {
    if (doc.mediaType) doc.mediaType = TO_OCI[doc.mediaType] ?? doc.mediaType;
    doc.config = { ...doc.config, mediaType: TO_OCI[doc.config.mediaType] ?? doc.config.mediaType };
    doc.layers = doc.layers.map((l) => ({ ...l, mediaType: TO_OCI[l.mediaType] ?? l.mediaType }));
  }
  const bytes = Buffer.from(JSON.stringify(doc));
  const mediaType = oci ? MediaType.OciManifest : (doc.mediaType ?? raw.mediaType);
  return { bytes, mediaType, digest: digestOf(bytes) };
}

/** Index bytes whose child descriptors in `renamed` (by old digest) name the rewritten manifests instead. */
export function rewriteChildren(index: Buffer, renamed: Map<string, RawManifest>): Buffer {
  const doc = JSON.parse(index.toString('utf8')) as { manifests: Descriptor[] };
  doc.manifests = doc.manifests.map((d) => {
    const r = renamed.get(d.digest);
    return r ? { ...d, mediaType: r.mediaType, digest: r.digest, size: r.bytes.length } : d;
  });
  return Buffer.from(JSON.stringify(doc));
}
