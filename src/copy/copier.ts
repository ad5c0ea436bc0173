// The shared state of one copy (both sides, options, summary, what was written); the copy steps take it.
import type { Digest } from '../oci/digest.js';
import { formatPlatform, type Platform } from '../oci/platform.js';
import type { ImageDestination, ImageSource, RawManifest } from '../transport/transport.js';
import type { LayerCompressor } from './compress.js';
import { limiter } from '../async/limit.js';
import type { CopyOptions, CopySummary } from './types.js';

/** One copy in progress: the steps in blobs.ts, contents.ts, index-copy.ts and referrers.ts work on it. */
export class Copier {
  /** Blob copies started, by digest: each blob is copied once, however many manifests name it. */
  readonly blobJobs = new Map<Digest, Promise<void>>();
  /** Manifests written to the destination: the subjects whose referrers come along. */
  readonly writtenManifests = new Set<Digest>();
  /** Runs a blob transfer or a layer compression within the `jobs` limit. */
  readonly run: <T>(task: () => Promise<T>) => Promise<T>;
  compressor: LayerCompressor | undefined;
  warnedCompression = false;
  readonly summary: CopySummary;

  constructor(
    readonly src: ImageSource,
    readonly dst: ImageDestination,
    readonly opts: CopyOptions,
  ) {
    this.run = limiter(Math.max(1, opts.jobs ?? 4));
    this.summary = {
      source: src.description,
      destination: dst.description,
      sourceDigest: '' as Digest,
      digest: '' as Digest,
      mediaType: '',
      manifests: [],
      blobs: [],
      bytesSent: 0,
      bytesSkipped: 0,
      bytesMounted: 0,
      durationMs: 0,
      warnings: [],
    };
  }

  /** Records a warning in the summary and passes it to the progress callbacks. */
  warn(message: string): void {
    this.summary.warnings.push(message);
    this.opts.progress?.warn?.(message);
  }

  /** Writes a manifest to the destination and remembers it as written. */
  async putManifest(m: RawManifest, tag?: string, top = false): Promise<void> {
    await this.dst.putManifest(m, tag, { top });
    this.writtenManifests.add(m.digest);
  }

  /** Adds a written manifest to the summary. */
  record(m: RawManifest, platform?: Platform): void {
    const entry: CopySummary['manifests'][number] = { digest: m.digest, mediaType: m.mediaType };
    if (platform) entry.platform = formatPlatform(platform);
    this.summary.manifests.push(entry);
  }

  /** Removes temporary files. */
  async cleanup(): Promise<void> {
    await this.compressor?.cleanup();
  }
}
