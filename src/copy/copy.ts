import type { Readable } from 'node:stream';
import { digestOf, digestTag, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { parseManifest, referencedBlobs, type ImageManifest, type Manifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';
import { formatPlatform, hostPlatform, platformMatches, type Platform } from '../oci/platform.js';
import { isConnectionError, RegistryError } from '../transport/registry-client.js';
import type { ImageDestination, ImageSource, RawManifest } from '../transport/transport.js';
import {
  canZstd,
  isUncompressedLayer,
  LayerCompressor,
  rewriteChildren,
  rewriteLayers,
  type CompressFormat,
} from './compress.js';
import { limiter } from '../async/limit.js';
import { rewriteIndex, selectChildren } from './platforms.js';
import { BlobVerificationError, VerifyStream } from './verify.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { isEvidence } from '../sign/evidence.js';

/** What happened to one blob. */
export type BlobAction = 'sent' | 'skipped' | 'mounted';

/** Callbacks the CLI turns into progress bars or log lines. */
export interface CopyProgress {
  blobStart?(d: Descriptor): void;
  blobBytes?(d: Descriptor, n: number): void;
  /** Called when a blob restarts after a failed attempt (its byte count goes back to zero). */
  blobRetry?(d: Descriptor, error: Error): void;
  blobDone?(d: Descriptor, action: BlobAction): void;
  /** Called when an uncompressed layer was compressed for the destination (before it is sent). */
  compressed?(from: Descriptor, to: Descriptor): void;
  warn?(message: string): void;
}

/** How to copy. */
export interface CopyOptions {
  /** Every platform of an index. */
  all?: boolean;
  /** A subset of an index's platforms; the original index is written unchanged unless `rewriteIndex`. */
  platforms?: Platform[];
  /** With a subset: write a new index listing only the copied platforms (its digest changes). */
  rewriteIndex?: boolean;
  /** Blobs in flight at once (default 4). */
  jobs?: number;
  /** Refuse any copy that would change a manifest digest. */
  preserveDigests?: boolean;
  /** Bring referrers and cosign `sha256-<hex>.sig/.att/.sbom` tags along. */
  withReferrers?: boolean;
  /**
   * With `withReferrers`: bring only evidence (signatures, attestations, SBOMs, by their layers' media types).
   * Set where a trust check judged the image: an image attached beside it was never judged, so it stays behind.
   */
  evidenceOnly?: boolean;
  /** Attempts per blob after the first on connection errors and 5xx (default 3). */
  retryTimes?: number;
  /**
   * How layers that a source holds uncompressed only because it keeps no registry form (docker-archive,
   * docker-daemon) are compressed for a registry or OCI layout: gzip by default, none with
   * `preserveDigests` (compressing changes the manifest digest), zstd where Node.js has it.
   */
  compressFormat?: CompressFormat;
  /** Folder for temporary files (compressed layers); default the system's. */
  tmpDir?: string;
  /** The platform used when neither `all` nor `platforms` is given (default: this machine's). */
  defaultPlatform?: Platform;
  progress?: CopyProgress;
}

/** The outcome of a copy, as `--json` prints it. */
export interface CopySummary {
  source: string;
  destination: string;
  /** Digest of the manifest the source reference names. */
  sourceDigest: Digest;
  /** Digest of the top manifest written to the destination (sent to it, where it keeps no manifest: see imageId). */
  digest: Digest;
  /** For a destination that keeps no manifest (docker-archive, docker-daemon): the config digest it holds, the image ID. */
  imageId?: Digest;
  mediaType: string;
  manifests: { digest: Digest; mediaType: string; platform?: string }[];
  blobs: { digest: Digest; size: number; action: BlobAction }[];
  bytesSent: number;
  bytesSkipped: number;
  bytesMounted: number;
  durationMs: number;
  warnings: string[];
}

/** A copy that cannot be done as asked; the message says what to do instead. */
export class CopyError extends Error {}

function retryable(e: unknown): boolean {
  if (e instanceof BlobVerificationError) return false;
  if (e instanceof RegistryError) return e.status >= 500 || e.status === 429;
  return isConnectionError(e) || /aborted|socket|other side closed|premature close/i.test((e as Error)?.message ?? '');
}

/**
 * Where this process last wrote or found each blob at a destination registry: `registry digest` →
 * repository. A later image bound for another repository of that registry mounts the blob from there
 * (one small POST) instead of downloading and uploading it again, as skopeo's blob-info cache does.
 */
const placed = new Map<string, string[]>();
const PLACED_MAX = 20_000;
/** Repositories remembered per blob (the latest last): enough to know where a run already put it. */
const PLACES_MAX = 16;
/** The copy whose turn it is with a blob at a destination registry, by `registry digest`; other copies wait for it. */
const writing = new Map<string, { done: Promise<void> }>();

function remember(registry: string, digest: Digest, repository: string): void {
  const key = `${registry} ${digest}`;
  const places = (placed.get(key) ?? []).filter((r) => r !== repository);
  places.push(repository);
  placed.delete(key);
  placed.set(key, places.slice(-PLACES_MAX));
  if (placed.size > PLACED_MAX) placed.delete(placed.keys().next().value!);
}

class Copier {
  private readonly blobJobs = new Map<Digest, Promise<void>>();
  private readonly writtenManifests = new Set<Digest>();
  private readonly run: <T>(task: () => Promise<T>) => Promise<T>;
  private compressor: LayerCompressor | undefined;
  private warnedCompression = false;
  readonly summary: CopySummary;

  constructor(
    private readonly src: ImageSource,
    private readonly dst: ImageDestination,
    private readonly opts: CopyOptions,
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

  warn(message: string): void {
    this.summary.warnings.push(message);
    this.opts.progress?.warn?.(message);
  }

  /** Copies one blob once, however many manifests name it. */
  copyBlob(d: Descriptor): Promise<void> {
    let job = this.blobJobs.get(d.digest);
    if (!job) {
      job = this.run(() => this.transferBlob(d));
      this.blobJobs.set(d.digest, job);
    }
    return job;
  }

  private async transferBlob(d: Descriptor): Promise<void> {
    const p = this.opts.progress;
    p?.blobStart?.(d);
    const from = this.src.location;
    const to = this.dst.location;
    const done = (action: BlobAction) => {
      if (to) remember(to.registry, d.digest, to.repository);
      this.summary.blobs.push({ digest: d.digest, size: d.size, action });
      if (action === 'sent') this.summary.bytesSent += d.size;
      else if (action === 'skipped') this.summary.bytesSkipped += d.size;
      else this.summary.bytesMounted += d.size;
      p?.blobDone?.(d, action);
    };
    const key = to && `${to.registry} ${d.digest}`;
    // One copy at a time per blob and destination registry, each taking its turn once the one before has
    // put, mounted or found it: images copied side by side send a shared layer once, and two copies bound
    // for one repository never mount it there at once (Distribution rewrites the repository's link file in
    // place, and a manifest PUT reading it meanwhile fails with DIGEST_INVALID). Claimed without an await
    // in between, so that the first copy to resume takes the next turn.
    let release: (() => void) | undefined;
    if (key) {
      for (let other = writing.get(key); other; other = writing.get(key)) await other.done;
      writing.set(key, { done: new Promise<void>((r) => (release = r)) });
    }
    try {
      const places = key ? placed.get(key) : undefined;
      // Where this process put it last; none when it is in the target repository already (then a HEAD finds it).
      const known = to && places && !places.includes(to.repository) ? places[places.length - 1] : undefined;
      // Mounting first saves the HEAD that would answer 404 in a repository new to this blob.
      // A remembered repository is a guess (the client may not read it, or it is gone): a failed mount falls through.
      if (to && known && this.dst.mountBlob && (await this.dst.mountBlob(d, known).catch(() => false)))
        return done('mounted');
      if (await this.dst.hasBlob(d)) return done('skipped');
      if (
        from &&
        to &&
        this.dst.mountBlob &&
        from.registry === to.registry &&
        from.repository !== to.repository &&
        from.repository !== known
      ) {
        if (await this.dst.mountBlob(d, from.repository)) return done('mounted');
      }
      return await this.upload(d, done);
    } finally {
      if (release) {
        writing.delete(key!);
        release();
      }
    }
  }

  /** Sends a blob from the source, retrying what a retry can cure. */
  private async upload(d: Descriptor, done: (action: BlobAction) => void): Promise<void> {
    const p = this.opts.progress;
    const retries = this.opts.retryTimes ?? 3;
    for (let attempt = 0; ; attempt++) {
      let stream: Readable | undefined;
      try {
        stream = this.compressor?.blob(d) ?? (await this.src.getBlob(d));
        const verify = new VerifyStream(d, (n) => p?.blobBytes?.(d, n));
        // A failing source must fail the verified stream too, or the destination would wait forever.
        stream.once('error', (e) => verify.destroy(e));
        // A blob that fails verification (too short, too long, another digest) fails the copy whether or not
        // the destination is listening at that moment: unheard, the stream's error event would end the process.
        const refused = new Promise<never>((_, reject) => verify.once('error', reject));
        await Promise.race([this.dst.putBlob(d, stream.pipe(verify)), refused]);
        return done('sent');
      } catch (e) {
        stream?.destroy();
        if (attempt >= retries || !retryable(e)) throw e;
        p?.blobRetry?.(d, e as Error);
        await sleep(Math.min(500 * 2 ** attempt, 10_000));
      }
    }
  }

  private async putManifest(m: RawManifest, tag?: string, top = false): Promise<void> {
    await this.dst.putManifest(m, tag, { top });
    this.writtenManifests.add(m.digest);
  }

  private record(m: RawManifest, platform?: Platform): void {
    const entry: CopySummary['manifests'][number] = { digest: m.digest, mediaType: m.mediaType };
    if (platform) entry.platform = formatPlatform(platform);
    this.summary.manifests.push(entry);
  }

  /** Copies a manifest and everything under it (every child of an index); does not write the manifest itself. */
  private async copyContents(m: Manifest): Promise<void> {
    if (m.kind === 'image') {
      // Layers before the config, as a registry checking references expects them all by manifest time.
      await Promise.all(
        [...m.layers, m.config].filter((b) => referencedBlobs(m).includes(b)).map((b) => this.copyBlob(b)),
      );
      return;
    }
    await Promise.all(m.manifests.map((d) => this.copyChild(d)));
  }

  /** Copies a child manifest (by digest) with its contents. */
  private async copyChild(d: Descriptor): Promise<RawManifest> {
    const raw = await this.prepare(await this.src.getManifest(d.digest));
    await this.copyContents(parseManifest(raw.bytes, raw.mediaType));
    await this.putManifest(raw);
    this.record(raw, d.platform);
    return raw;
  }

  async copy(): Promise<void> {
    const started = Date.now();
    const { src, dst, opts } = this;
    if (opts.rewriteIndex && opts.preserveDigests)
      throw new CopyError('--rewrite-index changes the index digest, which --preserve-digests forbids');
    for (const side of [src, dst]) {
      if (side.digestChange) {
        if (opts.preserveDigests)
          throw new CopyError(`--preserve-digests: ${side.description} changes manifest digests: ${side.digestChange}`);
        this.warn(`the manifest digest changes: ${side.digestChange}`);
      }
    }
    const format = this.compressFormat();
    if (format !== 'none') this.compressor = new LayerCompressor(format, opts.tmpDir);
    const top = await src.getManifest();
    const m = parseManifest(top.bytes, top.mediaType);
    this.summary.sourceDigest = top.digest;
    const tag = dst.tag;
    let written: RawManifest;
    if (m.kind === 'image') {
      if (opts.platforms?.length) await this.checkPlatforms(m);
      written = await this.prepare(top);
      await this.copyContents(parseManifest(written.bytes, written.mediaType));
      await this.putManifest(written, tag, true);
      this.record(written);
    } else {
      written = await this.copyIndex(top, m, tag);
    }
    this.summary.digest = written.digest;
    this.summary.mediaType = written.mediaType;
    if (dst.digestChange) {
      const image = parseManifest(written.bytes, written.mediaType);
      if (image.kind === 'image') this.summary.imageId = image.config.digest;
    }
    if (opts.withReferrers) {
      if (dst.singleImage) await this.skipReferrers([...this.writtenManifests]);
      else await this.copyReferrers([...this.writtenManifests]);
    }
    await dst.commit();
    this.summary.durationMs = Date.now() - started;
  }

  /** Removes temporary files. */
  async cleanup(): Promise<void> {
    await this.compressor?.cleanup();
  }

  /** The compression for layers the source holds uncompressed, or none when nothing is to be compressed. */
  private compressFormat(): CompressFormat {
    const { src, dst, opts } = this;
    if (!src.uncompressedLayers || dst.singleImage) return 'none';
    const format = opts.compressFormat ?? (opts.preserveDigests ? 'none' : 'gzip');
    if (format === 'none') return format;
    if (opts.preserveDigests) {
      throw new CopyError(
        `--preserve-digests: compressing the layers of ${src.description} with ${format} changes the manifest digest; pass --dest-compress-format none to copy them uncompressed`,
      );
    }
    if (format === 'zstd' && !canZstd())
      throw new CopyError(`zstd needs Node.js 22.15 or later (this is ${process.version}); use gzip or none`);
    return format;
  }

  /**
   * The manifest as it will be written. From a Docker archive or daemon into a registry or layout, an
   * image's uncompressed layers are compressed (new layer digests and media types, so a new manifest
   * digest), and a layout gets an OCI manifest rather than a Docker one (other tools read only OCI
   * manifests from a layout). The config is untouched: its diff_ids name the uncompressed layers, as
   * they must. Anything else is written as it is.
   */
  private async prepare(raw: RawManifest): Promise<RawManifest> {
    const { src, dst, opts, compressor } = this;
    if (!src.uncompressedLayers || dst.singleImage) return raw;
    const m = parseManifest(raw.bytes, raw.mediaType);
    if (m.kind !== 'image') return raw;
    const toOci = dst.prefersOci === true && !opts.preserveDigests && m.mediaType === MediaType.DockerManifest;
    const layers = compressor ? m.layers.filter((l) => isUncompressedLayer(l.mediaType)) : [];
    if (layers.length === 0 && !toOci) return raw;
    const oci = toOci || m.mediaType === MediaType.OciManifest || compressor?.format === 'zstd';
    const replaced = new Map<string, Descriptor>();
    await Promise.all(
      layers.map(async (l) => {
        const c = await this.run(() => compressor!.compress(src, l, oci));
        if (!replaced.has(l.digest)) opts.progress?.compressed?.(l, c);
        replaced.set(l.digest, c);
      }),
    );
    if (!src.digestChange && !this.warnedCompression) {
      // The source kept its manifest (a Docker 25+ archive): say why the digest changes after all.
      this.warnedCompression = true;
      this.warn(
        replaced.size > 0
          ? `the manifest digest changes: ${src.description} holds uncompressed layers, written ${compressor!.format}-compressed (--dest-compress-format none keeps them as they are)`
          : `the manifest digest changes: ${dst.description} gets an OCI manifest instead of the Docker one`,
      );
    }
    return rewriteLayers(raw, replaced, oci);
  }

  /** A single image asked for with --platform: fine when it is that platform, an error when it is another. */
  private async checkPlatforms(m: ImageManifest): Promise<void> {
    const wanted = this.opts.platforms ?? [];
    const has = await this.imagePlatform(m);
    if (!has) {
      this.warn(`${this.src.description} is a single image of no known platform, --platform is ignored`);
      return;
    }
    const missing = wanted.filter((w) => !platformMatches(w, has));
    if (missing.length > 0) {
      throw new CopyError(
        `the image is ${formatPlatform(has)} only; --platform ${missing.map(formatPlatform).join(', ')} matches nothing (${this.src.description} is a single image, not an index)`,
      );
    }
  }

  /** The platform an image's config names, or undefined when it names none (an artifact) or cannot be read. */
  private async imagePlatform(m: ImageManifest): Promise<Platform | undefined> {
    if (m.config.size > 4 * 1024 * 1024) return undefined;
    try {
      const chunks: Buffer[] = [];
      for await (const c of await this.src.getBlob(m.config)) chunks.push(Buffer.from(c as Buffer));
      const doc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        os?: unknown;
        architecture?: unknown;
        variant?: unknown;
      };
      if (typeof doc.os !== 'string' || typeof doc.architecture !== 'string' || !doc.os || !doc.architecture)
        return undefined;
      return typeof doc.variant === 'string' && doc.variant
        ? { os: doc.os, architecture: doc.architecture, variant: doc.variant }
        : { os: doc.os, architecture: doc.architecture };
    } catch {
      return undefined;
    }
  }

  private async copyIndex(
    top: RawManifest,
    index: Extract<Manifest, { kind: 'index' }>,
    tag: string | undefined,
  ): Promise<RawManifest> {
    const { opts, dst } = this;
    const explicit = opts.platforms && opts.platforms.length > 0;
    if (!opts.all && !explicit) {
      // As docker pull does: only this machine's image, written as the image itself.
      const platform = opts.defaultPlatform ?? hostPlatform();
      const [child] = selectChildren(index, [platform]);
      const raw = await this.prepare(await this.src.getManifest(child!.digest));
      await this.copyContents(parseManifest(raw.bytes, raw.mediaType));
      await this.putManifest(raw, tag, true);
      this.record(raw, child!.platform);
      return raw;
    }
    const children = opts.all ? index.manifests : selectChildren(index, opts.platforms!);
    if (dst.singleImage) {
      const images = children.filter((c) => !c.annotations?.['vnd.docker.reference.type']);
      if (images.length !== 1) {
        throw new CopyError(
          `${dst.description} holds a single image: choose one platform with --platform (the index has ${images.length > 1 ? images.length : 'no'} matching images)`,
        );
      }
      const raw = await this.src.getManifest(images[0]!.digest);
      await this.copyContents(parseManifest(raw.bytes, raw.mediaType));
      await this.putManifest(raw, tag, true);
      this.record(raw, images[0]!.platform);
      return raw;
    }
    const written = await Promise.all(children.map((c) => this.copyChild(c)));
    const partial = children.length < index.manifests.length;
    let out = top;
    if (partial && opts.rewriteIndex) {
      if (opts.preserveDigests)
        throw new CopyError('--rewrite-index changes the index digest, which --preserve-digests forbids');
      const bytes = rewriteIndex(top.bytes, children);
      out = { bytes, mediaType: top.mediaType, digest: digestOf(bytes) };
      this.warn(
        `wrote a new index with ${children.length} of ${index.manifests.length} manifests: its digest is ${out.digest}, not ${top.digest} (signatures over the original index do not cover it)`,
      );
    }
    // Children whose layers were compressed have new digests: the index must name those.
    const renamed = new Map<string, RawManifest>();
    children.forEach((c, i) => {
      if (written[i]!.digest !== c.digest) renamed.set(c.digest, written[i]!);
    });
    if (renamed.size > 0) {
      const bytes = rewriteChildren(out.bytes, renamed);
      out = { bytes, mediaType: out.mediaType, digest: digestOf(bytes) };
    }
    try {
      await this.putManifest(out, tag, true);
    } catch (e) {
      if (partial && !opts.rewriteIndex && e instanceof RegistryError && e.code === 'MANIFEST_BLOB_UNKNOWN') {
        throw new CopyError(
          `${dst.description} refused the index ${top.digest} without its other platforms (${e.message}). ` +
            'Use a target that accepts partial indexes (Sluice with validation.manifests.indexes.platforms: none or list), ' +
            'or pass --rewrite-index to write a new index with only the chosen platforms (its digest changes).',
        );
      }
      throw e;
    }
    this.record(out);
    return out;
  }

  /** Referrers of `subject` at the source and its cosign `sha256-<hex>.sig/.att/.sbom` tags. */
  private async findReferrers(subject: Digest, seen: Set<Digest>): Promise<{ raw: RawManifest; tag?: string }[]> {
    const found: { raw: RawManifest; tag?: string }[] = [];
    if (this.src.listReferrers) {
      for (const d of await this.src.listReferrers(subject)) {
        if (seen.has(d.digest)) continue;
        found.push({ raw: await this.src.getManifest(d.digest) });
      }
    }
    if (this.src.getTaggedManifest) {
      for (const suffix of ['sig', 'att', 'sbom']) {
        const t = `${digestTag(subject)}.${suffix}`;
        const raw = await this.src.getTaggedManifest(t);
        if (raw) found.push({ raw, tag: t });
      }
    }
    return found;
  }

  /** A destination that holds one image (a Docker archive or daemon) has no place for referrers: say what stays behind. */
  private async skipReferrers(subjects: Digest[]): Promise<void> {
    const left: string[] = [];
    for (const subject of subjects) {
      for (const { raw, tag } of await this.findReferrers(subject, new Set(subjects))) left.push(tag ?? raw.digest);
    }
    if (left.length > 0) {
      this.warn(
        `${this.dst.description} holds one image and no referrers or signatures: --with-referrers skipped ${left.length} (${left.join(', ')})`,
      );
    }
  }

  /** Brings along referrers (artifacts whose subject is a copied manifest) and cosign tags. */
  private async copyReferrers(subjects: Digest[]): Promise<void> {
    const seen = new Set<Digest>(subjects);
    let queue = subjects;
    while (queue.length > 0) {
      const next: Digest[] = [];
      for (const subject of queue) {
        const found = await this.findReferrers(subject, seen);
        for (const { raw, tag } of found) {
          const m = parseManifest(raw.bytes, raw.mediaType);
          if (this.opts.evidenceOnly && !isEvidence(m)) {
            this.warn(
              `${tag ?? raw.digest} is attached to ${subject} but is no signature, attestation or SBOM: not copied, as no trust check judged it`,
            );
            continue;
          }
          await this.copyContents(m);
          await this.putManifest(raw, tag);
          this.record(raw);
          if (!seen.has(raw.digest)) {
            seen.add(raw.digest);
            next.push(raw.digest);
          }
        }
      }
      queue = next;
    }
  }
}

/** Copies the image `src` names to `dst` and returns what was done. Closes neither side. */
export async function copyImage(src: ImageSource, dst: ImageDestination, opts: CopyOptions = {}): Promise<CopySummary> {
  const c = new Copier(src, dst, opts);
  try {
    await c.copy();
  } finally {
    await c.cleanup();
  }
  return c.summary;
}
