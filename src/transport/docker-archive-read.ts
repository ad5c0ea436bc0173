import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Digester, digestOf, isDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { parseManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';
import { isTaggedName, sameTaggedName } from './docker-names.js';
import { indexTar, normalizeMemberName, resolveMember, type TarMember } from './tar-index.js';
import type { ImageSource, RawManifest } from './transport.js';

/** Which image of a multi-image archive to read: a `NAME:TAG` from its RepoTags, or a position. */
export type ArchiveSelection = { name: string } | { index: number } | undefined;

/** One entry of `manifest.json`, the list `docker save` writes. */
interface SaveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/** Why a manifest read from a Docker archive may not carry the digest the image was pushed with. */
export const ARCHIVE_DIGEST_CHANGE =
  'a Docker archive keeps no manifest, only the config and uncompressed layers: Sluice describes the image with a new ' +
  'Docker schema 2 manifest over those layers, so the manifest digest (and the digest of any layer that was compressed) ' +
  'differs from the registry original; the config digest and diff_ids are unchanged';

const MAX_JSON = 16 * 1024 * 1024;
const HEX_BLOB = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/;

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new Error(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}

function rangeStream(path: string, m: TarMember): Readable {
  if (m.size === 0) return Readable.from([]);
  return createReadStream(path, { start: m.offset, end: m.offset + m.size - 1 });
}

async function readMember(path: string, m: TarMember, what: string): Promise<Buffer> {
  if (m.size > MAX_JSON) throw new Error(`${what} in ${path} is ${m.size} bytes; that is too large for JSON metadata`);
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(m.size);
    const { bytesRead } = await fh.read(buf, 0, m.size, m.offset);
    if (bytesRead !== m.size) throw new Error(`${path} is truncated inside ${what}`);
    return buf;
  } finally {
    await fh.close();
  }
}

async function sniff(path: string, m: TarMember): Promise<'gzip' | 'zstd' | 'none'> {
  if (m.size < 4) return 'none';
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(4);
    await fh.read(b, 0, 4, m.offset);
    if (b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
    if (b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    return 'none';
  } finally {
    await fh.close();
  }
}

async function hashMember(path: string, m: TarMember): Promise<Digest> {
  const d = new Digester();
  await pipeline(
    rangeStream(path, m),
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        d.update(chunk);
        cb();
      },
    }),
  );
  return d.digest();
}

/**
 * Reads a `docker save` archive: the classic layout (`manifest.json`, `<id>.json`, `<id>/layer.tar`)
 * and the Docker 25+ one, which stores the same files under `blobs/sha256/` beside an OCI layout.
 * When the OCI layout holds a manifest for the chosen image, its exact bytes are served (the digest
 * is kept); otherwise a Docker schema 2 manifest is synthesized over the archive's config and layers.
 */
export class DockerArchiveSource implements ImageSource {
  readonly digestChange?: string;
  readonly uncompressedLayers = true;
  private top!: RawManifest;
  private readonly manifests = new Map<string, RawManifest>();
  private readonly blobs = new Map<string, TarMember>();

  private constructor(
    readonly description: string,
    private readonly path: string,
    private readonly members: Map<string, TarMember>,
    digestChange: string | undefined,
  ) {
    if (digestChange) this.digestChange = digestChange;
  }

  /** Indexes the archive at `path` and picks the image `selection` names (or the only one). */
  static async open(
    path: string,
    selection: ArchiveSelection,
    description = `docker-archive:${path}`,
  ): Promise<DockerArchiveSource> {
    const list = await indexTar(path);
    const members = new Map(list.map((m) => [m.name, m]));
    const saveMember = resolveMember(members, 'manifest.json');
    if (!saveMember) throw new Error(`${path} is not a Docker archive: it has no manifest.json`);
    const save = parseJson(
      await readMember(path, saveMember, 'manifest.json'),
      `${path}: manifest.json`,
    ) as SaveEntry[];
    if (!Array.isArray(save) || save.length === 0) throw new Error(`${path}: manifest.json lists no image`);
    const entry = pickEntry(save, selection, path);

    const src = new DockerArchiveSource(description, path, members, undefined);
    for (const m of list) {
      const hit = HEX_BLOB.exec(m.name);
      const target = hit ? resolveMember(members, m.name) : undefined;
      if (hit && target) src.blobs.set(`${hit[1]}:${hit[2]}`, target);
    }
    const original = await src.findOciManifest(entry, selection);
    if (original) {
      src.top = original;
      return src;
    }
    (src as { digestChange?: string }).digestChange = ARCHIVE_DIGEST_CHANGE;
    src.top = await src.synthesize(entry);
    return src;
  }

  /** The manifest in the archive's OCI layout (Docker 25+) for this image, when it is complete there. */
  private async findOciManifest(entry: SaveEntry, selection: ArchiveSelection): Promise<RawManifest | undefined> {
    const indexMember = resolveMember(this.members, 'index.json');
    if (!indexMember || !resolveMember(this.members, 'oci-layout')) return undefined;
    const index = parseJson(await readMember(this.path, indexMember, 'index.json'), `${this.path}: index.json`) as {
      manifests?: Descriptor[];
    };
    const configMember = resolveMember(this.members, entry.Config);
    if (!configMember) return undefined;
    const configDigest = digestOf(await readMember(this.path, configMember, 'config'));
    for (const d of index.manifests ?? []) {
      const raw = await this.readManifestBlob(d.digest);
      if (!raw) continue;
      const parsed = parseManifest(raw.bytes);
      const name = d.annotations?.['io.containerd.image.name'];
      const named = selection && 'name' in selection && name !== undefined && sameTaggedName(name, selection.name);
      if (parsed.kind === 'image' ? parsed.config.digest === configDigest : named) {
        if (parsed.kind === 'image' && [parsed.config, ...parsed.layers].some((b) => !this.blobs.has(b.digest)))
          continue;
        return raw;
      }
    }
    return undefined;
  }

  private async readManifestBlob(digest: string): Promise<RawManifest | undefined> {
    const cached = this.manifests.get(digest);
    if (cached) return cached;
    const m = this.blobs.get(digest);
    if (!m || !isDigest(digest)) return undefined;
    const bytes = await readMember(this.path, m, `manifest ${digest}`);
    if (digestOf(bytes, digest.startsWith('sha512:') ? 'sha512' : 'sha256') !== digest)
      throw new Error(`${this.path}: blob ${digest} does not match its digest`);
    const mediaType = parseManifest(bytes).mediaType;
    const raw: RawManifest = { bytes, mediaType, digest };
    this.manifests.set(digest, raw);
    return raw;
  }

  /** Builds the Docker schema 2 manifest that describes the entry's config and layers as stored. */
  private async synthesize(entry: SaveEntry): Promise<RawManifest> {
    const configMember = resolveMember(this.members, entry.Config);
    if (!configMember) throw new Error(`${this.path}: config ${entry.Config} named in manifest.json is missing`);
    const configBytes = await readMember(this.path, configMember, 'config');
    const configDigest = digestOf(configBytes);
    this.blobs.set(configDigest, configMember);
    const config = parseJson(configBytes, `${this.path}: config ${entry.Config}`) as {
      rootfs?: { diff_ids?: string[] };
    };
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== entry.Layers.length) {
      throw new Error(
        `${this.path}: the config lists ${diffIds.length} layers but manifest.json names ${entry.Layers.length}`,
      );
    }
    const layers: { mediaType: string; size: number; digest: string }[] = [];
    let oci = false;
    for (const [i, layerPath] of entry.Layers.entries()) {
      const m = resolveMember(this.members, layerPath);
      if (!m) throw new Error(`${this.path}: layer ${layerPath} named in manifest.json is missing`);
      const compression = await sniff(this.path, m);
      const hit = HEX_BLOB.exec(normalizeMemberName(layerPath));
      let digest: string;
      // An uncompressed layer is its own diff_id; a path under blobs/ is its digest; anything else is hashed.
      if (hit) digest = `${hit[1]}:${hit[2]}`;
      else if (compression === 'none' && isDigest(diffIds[i]!)) digest = diffIds[i]!;
      else digest = await hashMember(this.path, m);
      const mediaType =
        compression === 'gzip'
          ? MediaType.DockerLayerGzip
          : compression === 'zstd'
            ? MediaType.OciLayerZstd
            : MediaType.DockerLayer;
      if (compression === 'zstd') oci = true;
      this.blobs.set(digest, m);
      layers.push({ mediaType, size: m.size, digest });
    }
    // Field order and compact JSON as Go's encoder writes them, so the bytes match what skopeo synthesizes.
    const doc = oci
      ? {
          schemaVersion: 2,
          mediaType: MediaType.OciManifest,
          config: { mediaType: MediaType.OciConfig, size: configBytes.length, digest: configDigest },
          layers: layers.map((l) => ({
            ...l,
            mediaType:
              l.mediaType === MediaType.DockerLayerGzip
                ? MediaType.OciLayerGzip
                : l.mediaType === MediaType.DockerLayer
                  ? MediaType.OciLayer
                  : l.mediaType,
          })),
        }
      : {
          schemaVersion: 2,
          mediaType: MediaType.DockerManifest,
          config: { mediaType: MediaType.DockerConfig, size: configBytes.length, digest: configDigest },
          layers,
        };
    const bytes = Buffer.from(JSON.stringify(doc));
    return { bytes, mediaType: doc.mediaType, digest: digestOf(bytes) };
  }

  /** The image manifest; by digest, also a manifest stored in the archive's OCI layout. */
  async getManifest(digest?: Digest): Promise<RawManifest> {
    if (!digest || digest === this.top.digest) return this.top;
    const raw = await this.readManifestBlob(digest);
    if (!raw) throw new Error(`${this.description}: manifest ${digest} is not in the archive`);
    return raw;
  }

  /** Streams a blob as a byte range of the archive file. */
  async getBlob(descriptor: Descriptor): Promise<Readable> {
    const m = this.blobs.get(descriptor.digest);
    if (!m) throw new Error(`${this.description}: blob ${descriptor.digest} is not in the archive`);
    return rangeStream(this.path, m);
  }

  /** RepoTags do not belong to one repository; an archive has nothing to list. */
  async close(): Promise<void> {}
}

function pickEntry(save: SaveEntry[], selection: ArchiveSelection, path: string): SaveEntry {
  // Only names that parse are shown: a hostile archive's RepoTags may be traversal strings or megabytes long.
  const names = save.flatMap((e) => (Array.isArray(e.RepoTags) ? e.RepoTags : [])).filter(isTaggedName);
  if (selection && 'index' in selection) {
    const e = save[selection.index];
    if (!e) throw new Error(`${path} holds ${save.length} image(s); there is no image @${selection.index}`);
    return e;
  }
  if (selection && 'name' in selection) {
    const e = save.find((x) => Array.isArray(x.RepoTags) && x.RepoTags.some((t) => sameTaggedName(t, selection.name)));
    if (!e)
      throw new Error(`${path} has no image ${selection.name} (it has: ${names.join(', ') || 'only untagged images'})`);
    return e;
  }
  if (save.length > 1)
    throw new Error(
      `${path} holds ${save.length} images; name one: docker-archive:${path}:NAME:TAG (${names.join(', ')}) or :@INDEX`,
    );
  return save[0]!;
}
