import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { digestOf, isDigest, parseDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { effectiveArtifactType, parseManifest, type Manifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';
import { isRefName, quoteName } from '../oci/name.js';
import { DirectoryFiles, type LayoutFiles, type WritableLayoutFiles } from './layout-files.js';
import type { ImageDestination, ImageSource, PutManifestOptions, RawManifest } from './transport.js';
import { readBounded, refuseDeclared, type ReadLimit } from './bounded.js';

/** The annotation an OCI layout uses to name a manifest (its "tag"). */
export const REF_NAME = 'org.opencontainers.image.ref.name';

// The tags cosign attaches to an image (`sha256-<hex>.sig`), which name no image of their own.
const COSIGN_TAG = /^sha(256|512)-[a-f0-9]{64,128}\.(sig|att|sbom)$/;

interface LayoutIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  [k: string]: unknown;
}

/** Splits `DIR[:REF]` at the first colon, as skopeo does (so DIR cannot hold one). */
export function parseLayoutReference(rest: string): { dir: string; ref?: string } {
  const i = rest.indexOf(':');
  if (i < 0) return { dir: rest };
  const ref = rest.slice(i + 1);
  return ref ? { dir: rest.slice(0, i), ref } : { dir: rest.slice(0, i) };
}

/** Path of a blob inside a layout, relative to it ('/'-separated). */
function blobFile(digest: Digest): string {
  const { algorithm, hex } = parseDigest(digest);
  return `blobs/${algorithm}/${hex}`;
}

/** Path of a blob inside a layout directory. */
export function blobPath(dir: string, digest: Digest): string {
  return join(dir, ...blobFile(digest).split('/'));
}

/** A layout's index.json; undefined when the place holds none (not a layout, or not yet one). */
async function readIndex(files: LayoutFiles): Promise<LayoutIndex | undefined> {
  const bytes = await files.read('index.json');
  if (!bytes) return undefined;
  const doc = JSON.parse(bytes.toString('utf8')) as LayoutIndex;
  if (!Array.isArray(doc.manifests)) throw new Error(`${files.where}/index.json has no manifests list`);
  return doc;
}

/** Media type of manifest bytes: the document's own, else the descriptor's, else what its shape says. */
function manifestType(bytes: Buffer, hint?: string): string {
  try {
    const m = parseManifest(bytes, hint);
    return m.mediaType;
  } catch {
    return hint ?? MediaType.OciManifest;
  }
}

const SMALL_MANIFEST = { maxBytes: 4 * 1024 * 1024 };

/** The manifest at `digest` when it is small enough to be one and parses; undefined otherwise. */
async function readSmallManifest(files: LayoutFiles, d: Descriptor): Promise<Manifest | undefined> {
  if (d.size > SMALL_MANIFEST.maxBytes) return undefined;
  try {
    // index.json's size may understate the file: the read itself stops at the bound.
    return parseManifest(
      await readBounded(await files.stream(blobFile(d.digest)), `manifest ${d.digest}`, SMALL_MANIFEST),
      d.mediaType,
    );
  } catch {
    return undefined;
  }
}

/** Reads images from an OCI image layout: a directory, or other layout files (a bucket, a web server). */
export class LayoutSource implements ImageSource {
  readonly description: string;
  private constructor(
    readonly files: LayoutFiles,
    private readonly index: LayoutIndex,
    // Undefined until asked for: listing a layout's names needs no image chosen.
    private top: Descriptor | undefined,
    description: string,
  ) {
    this.description = description;
  }

  /**
   * Opens `DIR[:REF]` (or the layout `files`); without REF the layout must hold exactly one image (referrers
   * listed beside it do not count). `description` names it in messages, `oci:DIR[:REF]` by default.
   */
  static async open(place: string | LayoutFiles, ref?: string, description?: string): Promise<LayoutSource> {
    const files = typeof place === 'string' ? new DirectoryFiles(place) : place;
    const index = await readIndex(files);
    if (!index) throw new Error(`${files.where} is not an OCI image layout (no index.json)`);
    const what = description ?? `oci:${files.where}`;
    let top: Descriptor | undefined;
    if (ref && isDigest(ref)) {
      top = index.manifests.find((d) => d.digest === ref);
      if (!top) {
        const bytes = await files.read(blobFile(ref));
        if (!bytes) throw new Error(`${what}: no manifest ${ref}`);
        top = { mediaType: manifestType(bytes), digest: ref, size: bytes.length };
      }
    } else if (ref) {
      if (!isRefName(ref))
        throw new Error(`${what}: invalid image name ${quoteName(ref)} (a ref.name is a tag or a reference)`);
      top = index.manifests.find((d) => d.annotations?.[REF_NAME] === ref);
      if (!top)
        throw new Error(
          `${what}: no image named "${ref}" (index.json names: ${names(index).map(quoteName).join(', ') || 'none'})`,
        );
    }
    return new LayoutSource(files, index, top, description ?? `oci:${files.where}${ref ? `:${ref}` : ''}`);
  }

  /**
   * The manifest `DIR` names without REF: the only one in index.json, not counting what is attached to
   * it (referrers, which have a subject, and cosign's `sha256-<hex>.sig/.att/.sbom` tags).
   */
  private async resolveTop(): Promise<Descriptor> {
    if (this.top) return this.top;
    let candidates = [...new Map(this.index.manifests.map((d) => [d.digest, d])).values()];
    if (candidates.length > 1) {
      const images: Descriptor[] = [];
      for (const d of candidates) {
        if (COSIGN_TAG.test(d.annotations?.[REF_NAME] ?? '')) continue;
        if (!(await readSmallManifest(this.files, d))?.subject) images.push(d);
      }
      if (images.length > 0) candidates = images;
    }
    if (candidates.length !== 1) {
      throw new Error(
        `${this.description} holds ${candidates.length} images: name one with ${this.description}:REF (names: ${names(this.index).join(', ') || 'none'})`,
      );
    }
    this.top = candidates[0]!;
    return this.top;
  }

  async getManifest(digest?: Digest, limit?: ReadLimit): Promise<RawManifest> {
    const top = await this.resolveTop();
    const d = digest ?? top.digest;
    let bytes: Buffer | undefined;
    if (limit?.maxBytes === undefined) {
      bytes = await this.files.read(blobFile(d));
    } else {
      // Bounded: the file's size refuses first, and the read stops at the bound if the file is larger than it said.
      const what = `${this.description}: manifest ${d}`;
      const size = await this.files.size(blobFile(d));
      refuseDeclared(what, size, limit, 'its file size');
      if (size !== undefined) bytes = await readBounded(await this.files.stream(blobFile(d)), what, limit);
    }
    if (!bytes) throw new Error(`${this.description}: no manifest ${d}`);
    if (digestOf(bytes, parseDigest(d).algorithm) !== d)
      throw new Error(`${this.description}: manifest ${d} does not match its digest`);
    const hint = d === top.digest ? top.mediaType : this.index.manifests.find((m) => m.digest === d)?.mediaType;
    return { bytes, mediaType: manifestType(bytes, hint), digest: d };
  }

  async getBlob(descriptor: Descriptor): Promise<Readable> {
    return this.files.stream(blobFile(descriptor.digest));
  }

  /** The names (ref.name annotations) in index.json, whichever image the reference chose. */
  async listTags(): Promise<string[]> {
    return [...new Set(names(this.index))];
  }

  /**
   * Manifests listed in index.json whose subject is `subject`: the image-layout spec's way to find
   * referrers (there is no referrers index in a layout).
   */
  async listReferrers(subject: Digest): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    const seen = new Set<string>();
    for (const d of this.index.manifests) {
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      const m = await readSmallManifest(this.files, d);
      if (m?.subject?.digest === subject) out.push(referrerDescriptor(m, d.digest, d.size));
    }
    return out;
  }

  async getTaggedManifest(tag: string, limit?: ReadLimit): Promise<RawManifest | undefined> {
    const d = this.index.manifests.find((m) => m.annotations?.[REF_NAME] === tag);
    if (d)
      refuseDeclared(
        `${this.description}: manifest ${d.digest} (tag ${tag})`,
        d.size,
        limit,
        'its index.json descriptor',
      );
    return d ? this.getManifest(d.digest, limit) : undefined;
  }

  async close(): Promise<void> {
    await this.files.close?.();
  }
}

/** A referrer's descriptor as the referrers API lists it: with its artifact type and annotations. */
function referrerDescriptor(m: Manifest, digest: Digest, size: number): Descriptor {
  const d: Descriptor = { mediaType: m.mediaType, digest, size };
  const type = effectiveArtifactType(m);
  if (type) d.artifactType = type;
  if (m.annotations && Object.keys(m.annotations).length > 0) d.annotations = { ...m.annotations };
  return d;
}

/** The valid ref.names of index.json; an archive from outside may hold `../..` or megabytes of name, which name nothing. */
function names(index: LayoutIndex): string[] {
  return index.manifests.map((d) => d.annotations?.[REF_NAME]).filter((n): n is string => isRefName(n as string));
}

/** Writes images into an OCI image layout (created when missing; index.json updated on commit). */
export class LayoutDestination implements ImageDestination {
  readonly description: string;
  readonly prefersOci = true;
  readonly tag?: string;
  private index: LayoutIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };

  private constructor(
    readonly files: WritableLayoutFiles,
    tag: string | undefined,
    description?: string,
  ) {
    this.description = description ?? `oci:${files.where}${tag ? `:${tag}` : ''}`;
    if (tag) this.tag = tag;
  }

  /** Opens (or creates) the layout `DIR` (or `files`); `tag` names the copied image in index.json. */
  static async open(
    place: string | WritableLayoutFiles,
    tag?: string,
    description?: string,
  ): Promise<LayoutDestination> {
    const files = typeof place === 'string' ? new DirectoryFiles(place) : place;
    // The spec wants the blobs directory even when empty; a bucket has no directories to make.
    if (typeof place === 'string') await mkdir(join(place, 'blobs', 'sha256'), { recursive: true });
    const d = new LayoutDestination(files, tag, description);
    d.index = (await readIndex(files)) ?? d.index;
    await files.write('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
    return d;
  }

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    return (await this.files.size(blobFile(descriptor.digest))) === descriptor.size;
  }

  async putBlob(descriptor: Descriptor, body: Readable): Promise<void> {
    try {
      await this.files.writeStream(blobFile(descriptor.digest), body, descriptor.size);
    } catch (e) {
      throw new Error(`blob ${descriptor.digest}: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Writes the manifest blob and lists it in index.json when it is named (`tag`), the copied image
   * (`top`) or a referrer (it has a subject): the layout spec finds referrers only among listed
   * manifests, so an unlisted one would be lost to the next copy, as oras and skopeo would lose it.
   */
  async putManifest(manifest: RawManifest, tag?: string, options: PutManifestOptions = {}): Promise<void> {
    await this.files.write(blobFile(manifest.digest), manifest.bytes);
    let parsed: Manifest | undefined;
    try {
      parsed = parseManifest(manifest.bytes, manifest.mediaType);
    } catch {
      parsed = undefined;
    }
    const referrer = parsed?.subject !== undefined;
    if (!tag && !options.top && !referrer) return;
    const desc: Descriptor =
      referrer && parsed
        ? referrerDescriptor(parsed, manifest.digest, manifest.bytes.length)
        : { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length };
    if (tag) {
      desc.annotations = { ...desc.annotations, [REF_NAME]: tag };
      this.index.manifests = this.index.manifests.filter((d) => d.annotations?.[REF_NAME] !== tag);
    } else if (this.index.manifests.some((d) => d.digest === manifest.digest)) {
      // Listed already (named or not): a second, unnamed entry would only repeat it.
      return;
    }
    this.index.manifests.push(desc);
  }

  async commit(): Promise<void> {
    await this.files.write('index.json', Buffer.from(JSON.stringify(this.index)));
  }

  async close(): Promise<void> {
    await this.files.close?.();
  }
}

/** Opens `oci:DIR[:REF]` for reading. */
export function openLayoutSource(rest: string): Promise<LayoutSource> {
  const { dir, ref } = parseLayoutReference(rest);
  if (!dir) throw new Error('oci: needs a directory (oci:DIR[:REF])');
  return LayoutSource.open(dir, ref);
}

/** Opens `oci:DIR[:REF]` for writing. */
export function openLayoutDestination(rest: string): Promise<LayoutDestination> {
  const { dir, ref } = parseLayoutReference(rest);
  if (!dir) throw new Error('oci: needs a directory (oci:DIR[:REF])');
  return LayoutDestination.open(dir, ref);
}
