import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { digestOf, isDigest, parseDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { effectiveArtifactType, parseManifest, type Manifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';
import type { ImageDestination, ImageSource, PutManifestOptions, RawManifest } from './transport.js';

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

/** Path of a blob inside a layout. */
export function blobPath(dir: string, digest: Digest): string {
  const { algorithm, hex } = parseDigest(digest);
  return join(dir, 'blobs', algorithm, hex);
}

async function readIndex(dir: string): Promise<LayoutIndex> {
  let text: string;
  try {
    text = await readFile(join(dir, 'index.json'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${dir} is not an OCI image layout (no index.json)`);
    throw e;
  }
  const doc = JSON.parse(text) as LayoutIndex;
  if (!Array.isArray(doc.manifests)) throw new Error(`${dir}/index.json has no manifests list`);
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

/** The manifest at `digest` when it is small enough to be one and parses; undefined otherwise. */
async function readSmallManifest(dir: string, d: Descriptor): Promise<Manifest | undefined> {
  if (d.size > 4 * 1024 * 1024) return undefined;
  try {
    return parseManifest(await readFile(blobPath(dir, d.digest)), d.mediaType);
  } catch {
    return undefined;
  }
}

/** Reads images from an OCI image layout directory. */
export class LayoutSource implements ImageSource {
  readonly description: string;
  private constructor(
    readonly dir: string,
    private readonly index: LayoutIndex,
    // Undefined until asked for: listing a layout's names needs no image chosen.
    private top: Descriptor | undefined,
    description?: string,
  ) {
    this.description = description ?? `oci:${dir}`;
  }

  /** Opens `DIR[:REF]`; without REF the layout must hold exactly one image (referrers listed beside it do not count). */
  static async open(dir: string, ref?: string, description?: string): Promise<LayoutSource> {
    const index = await readIndex(dir);
    const what = description ?? `oci:${dir}`;
    let top: Descriptor | undefined;
    if (ref && isDigest(ref)) {
      top = index.manifests.find((d) => d.digest === ref);
      if (!top) {
        const st = await stat(blobPath(dir, ref)).catch(() => null);
        if (!st) throw new Error(`${what}: no manifest ${ref}`);
        const bytes = await readFile(blobPath(dir, ref));
        top = { mediaType: manifestType(bytes), digest: ref, size: bytes.length };
      }
    } else if (ref) {
      top = index.manifests.find((d) => d.annotations?.[REF_NAME] === ref);
      if (!top) throw new Error(`${what}: no image named "${ref}" (index.json names: ${names(index).join(', ') || 'none'})`);
    }
    return new LayoutSource(dir, index, top, description ?? `oci:${dir}${ref ? `:${ref}` : ''}`);
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
        if (!(await readSmallManifest(this.dir, d))?.subject) images.push(d);
      }
      if (images.length > 0) candidates = images;
    }
    if (candidates.length !== 1) {
      throw new Error(`${this.description} holds ${candidates.length} images: name one with oci:${this.dir}:REF (names: ${names(this.index).join(', ') || 'none'})`);
    }
    this.top = candidates[0]!;
    return this.top;
  }

  async getManifest(digest?: Digest): Promise<RawManifest> {
    const top = await this.resolveTop();
    const d = digest ?? top.digest;
    const bytes = await readFile(blobPath(this.dir, d));
    if (digestOf(bytes, parseDigest(d).algorithm) !== d) throw new Error(`${this.description}: manifest ${d} does not match its digest`);
    const hint = d === top.digest ? top.mediaType : this.index.manifests.find((m) => m.digest === d)?.mediaType;
    return { bytes, mediaType: manifestType(bytes, hint), digest: d };
  }

  async getBlob(descriptor: Descriptor): Promise<Readable> {
    const p = blobPath(this.dir, descriptor.digest);
    // Open first, so a missing blob fails here rather than mid-stream.
    await stat(p);
    return createReadStream(p, { highWaterMark: 1024 * 1024 });
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
      const m = await readSmallManifest(this.dir, d);
      if (m?.subject?.digest === subject) out.push(referrerDescriptor(m, d.digest, d.size));
    }
    return out;
  }

  async getTaggedManifest(tag: string): Promise<RawManifest | undefined> {
    const d = this.index.manifests.find((m) => m.annotations?.[REF_NAME] === tag);
    return d ? this.getManifest(d.digest) : undefined;
  }

  async close(): Promise<void> {}
}

/** A referrer's descriptor as the referrers API lists it: with its artifact type and annotations. */
function referrerDescriptor(m: Manifest, digest: Digest, size: number): Descriptor {
  const d: Descriptor = { mediaType: m.mediaType, digest, size };
  const type = effectiveArtifactType(m);
  if (type) d.artifactType = type;
  if (m.annotations && Object.keys(m.annotations).length > 0) d.annotations = { ...m.annotations };
  return d;
}

function names(index: LayoutIndex): string[] {
  return index.manifests.map((d) => d.annotations?.[REF_NAME]).filter((n): n is string => typeof n === 'string');
}

/** Writes images into an OCI image layout directory (created when missing; index.json updated on commit). */
export class LayoutDestination implements ImageDestination {
  readonly description: string;
  readonly prefersOci = true;
  readonly tag?: string;
  private index: LayoutIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };

  private constructor(
    readonly dir: string,
    tag: string | undefined,
    description?: string,
  ) {
    this.description = description ?? `oci:${dir}${tag ? `:${tag}` : ''}`;
    if (tag) this.tag = tag;
  }

  /** Opens (or creates) the layout `dir`; `tag` names the copied image in index.json. */
  static async open(dir: string, tag?: string, description?: string): Promise<LayoutDestination> {
    const d = new LayoutDestination(dir, tag, description);
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    try {
      d.index = await readIndex(dir);
    } catch (e) {
      if (!/no index\.json/.test((e as Error).message)) throw e;
    }
    await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    return d;
  }

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    const st = await stat(blobPath(this.dir, descriptor.digest)).catch(() => null);
    return st !== null && st.size === descriptor.size;
  }

  async putBlob(descriptor: Descriptor, body: Readable): Promise<void> {
    const final = blobPath(this.dir, descriptor.digest);
    await mkdir(join(final, '..'), { recursive: true });
    // Written under a temporary name and renamed once complete: a failed copy never leaves a wrong blob.
    const tmp = `${final}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await pipeline(body, createWriteStream(tmp));
      const st = await stat(tmp);
      if (st.size !== descriptor.size) throw new Error(`blob ${descriptor.digest}: got ${st.size} bytes, expected ${descriptor.size}`);
      await rename(tmp, final);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  /**
   * Writes the manifest blob and lists it in index.json when it is named (`tag`), the copied image
   * (`top`) or a referrer (it has a subject): the layout spec finds referrers only among listed
   * manifests, so an unlisted one would be lost to the next copy, as oras and skopeo would lose it.
   */
  async putManifest(manifest: RawManifest, tag?: string, options: PutManifestOptions = {}): Promise<void> {
    const p = blobPath(this.dir, manifest.digest);
    await mkdir(join(p, '..'), { recursive: true });
    await writeFile(p, manifest.bytes);
    let parsed: Manifest | undefined;
    try {
      parsed = parseManifest(manifest.bytes, manifest.mediaType);
    } catch {
      parsed = undefined;
    }
    const referrer = parsed?.subject !== undefined;
    if (!tag && !options.top && !referrer) return;
    const desc: Descriptor =
      referrer && parsed ? referrerDescriptor(parsed, manifest.digest, manifest.bytes.length) : { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length };
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
    const p = join(this.dir, 'index.json');
    await writeFile(`${p}.tmp`, JSON.stringify(this.index));
    await rename(`${p}.tmp`, p);
  }

  async close(): Promise<void> {}
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
