import { createReadStream, createWriteStream } from 'node:fs';
import { MeasureStream } from './measure.js';
import { readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import tar from 'tar-stream';
import { Digester, parseDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { parseManifest, type ImageManifest } from '../oci/manifest.js';
import type { PutManifestOptions, RawManifest } from './transport.js';

/** Why writing into a Docker archive or daemon changes the manifest digest. */
export const ARCHIVE_WRITE_DIGEST_CHANGE =
  'a Docker archive holds the config and uncompressed layers but no manifest: compressed layers are stored ' +
  'decompressed and the image is later described by a new manifest, so the manifest digest (and compressed layer ' +
  'digests) change; the config digest (the image ID) and diff_ids stay the same';

/** A blob spooled to disk, as it will be stored in the archive (decompressed when it was compressed). */
interface Spooled {
  file: string;
  /** Digest and size of the stored (uncompressed) bytes: a layer's diff_id. */
  diffId: Digest;
  size: number;
}

/** Hashes what passes and checks it against a descriptor at the end. */
class Verify extends Transform {
  private readonly digester: Digester;
  private bytes = 0;
  constructor(
    private readonly expected: { digest: Digest; size: number },
    private readonly what: string,
  ) {
    super();
    this.digester = new Digester(parseDigest(expected.digest).algorithm);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.digester.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const got = this.digester.digest();
    if (this.expected.size >= 0 && this.bytes !== this.expected.size)
      cb(new Error(`${this.what}: got ${this.bytes} bytes, expected ${this.expected.size}`));
    else if (got !== this.expected.digest)
      cb(new Error(`${this.what}: content has digest ${got}, expected ${this.expected.digest}`));
    else cb();
  }
}

function decompressor(kind: 'gzip' | 'zstd'): Transform {
  if (kind === 'gzip') return zlib.createGunzip();
  const make = (zlib as unknown as { createZstdDecompress?: () => Transform }).createZstdDecompress;
  if (!make)
    throw new Error(
      'this layer is zstd-compressed and this Node.js cannot decompress zstd (Node 22.15 or later can); docker load needs it uncompressed',
    );
  return make();
}

/** Reads the first bytes of a stream to tell its compression, then gives back the whole stream. */
async function peek(body: Readable): Promise<{ kind: 'gzip' | 'zstd' | 'none'; stream: Readable }> {
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let length = 0;
  while (length < 4) {
    const r = await it.next();
    if (r.done) break;
    const c = Buffer.from(r.value);
    head.push(c);
    length += c.length;
  }
  const first = Buffer.concat(head);
  const kind =
    first[0] === 0x1f && first[1] === 0x8b
      ? 'gzip'
      : first.length >= 4 && first.readUInt32LE(0) === 0xfd2fb528
        ? 'zstd'
        : 'none';
  const stream = Readable.from(
    (async function* () {
      if (first.length > 0) yield first;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    })(),
    { objectMode: false },
  );
  return { kind, stream };
}

/**
 * Collects one image (blobs spooled to a folder, decompressed on the way in) and writes it as a
 * `docker save` archive that `docker load` accepts: `manifest.json` with Config, RepoTags and Layers,
 * the config as `<hex>.json` and each layer as `<diff_id hex>/layer.tar`. Blobs arrive in any order
 * and in parallel, a tar is sequential: spooling lets the tar be written once everything is there.
 */
export class DockerArchiveWriter {
  private readonly spooled = new Map<string, Spooled>();
  private readonly images = new Map<string, ImageManifest>();
  private topDigest: string | undefined;
  private counter = 0;

  constructor(
    private readonly spoolDir: string,
    private readonly repoTags: string[],
  ) {}

  /** True when this blob is already spooled. */
  has(digest: string): boolean {
    return this.spooled.has(digest);
  }

  /** Spools a blob, verifying it against its descriptor and decompressing gzip/zstd layers. */
  async putBlob(descriptor: Descriptor, body: Readable): Promise<void> {
    if (this.spooled.has(descriptor.digest)) {
      body.resume();
      return;
    }
    const { kind, stream } = await peek(body);
    const part = join(this.spoolDir, `blob-${++this.counter}.part`);
    const measure = new MeasureStream();
    const verify = new Verify(descriptor, `blob ${descriptor.digest}`);
    try {
      if (kind === 'none') await pipeline(stream, verify, measure, createWriteStream(part));
      else await pipeline(stream, verify, decompressor(kind), measure, createWriteStream(part));
    } catch (e) {
      await rm(part, { force: true });
      throw e;
    }
    const diffId = measure.digester.digest();
    const file = join(this.spoolDir, parseDigest(descriptor.digest).hex);
    await rename(part, file);
    this.spooled.set(descriptor.digest, { file, diffId, size: measure.bytes });
  }

  /** Records a manifest; indexes are accepted but only one image manifest can go into the archive. */
  putManifest(manifest: RawManifest, tag?: string, options?: PutManifestOptions): void {
    const parsed = parseManifest(manifest.bytes, manifest.mediaType);
    if (parsed.kind === 'index') return;
    this.images.set(manifest.digest, parsed);
    if (options?.top || tag !== undefined) this.topDigest = manifest.digest;
  }

  private chosenImage(): ImageManifest {
    if (this.topDigest) return this.images.get(this.topDigest)!;
    if (this.images.size === 1) return [...this.images.values()][0]!;
    if (this.images.size === 0) throw new Error('no image manifest was written: a Docker archive needs one image');
    throw new Error(
      `${this.images.size} images were written but a Docker archive entry holds one: choose a platform with --platform`,
    );
  }

  /** Checks that everything is there and returns the archive as a stream (tar, uncompressed). */
  async archive(): Promise<Readable> {
    const image = this.chosenImage();
    const config = this.spooled.get(image.config.digest);
    if (!config) throw new Error(`config ${image.config.digest} was not written`);
    const configDoc = JSON.parse(await readFile(config.file, 'utf8')) as { rootfs?: { diff_ids?: string[] } };
    const diffIds = configDoc.rootfs?.diff_ids ?? [];
    if (diffIds.length !== image.layers.length)
      throw new Error(`the config lists ${diffIds.length} diff_ids but the manifest has ${image.layers.length} layers`);
    const layers = image.layers.map((l, i) => {
      const s = this.spooled.get(l.digest);
      if (!s) throw new Error(`layer ${l.digest} was not written`);
      // docker load checks each layer against the config's diff_ids; fail here with a clearer message.
      if (s.diffId !== diffIds[i])
        throw new Error(`layer ${l.digest} unpacks to ${s.diffId} but the config lists diff_id ${diffIds[i]}`);
      return s;
    });
    const configName = `${parseDigest(image.config.digest).hex}.json`;
    const layerNames = layers.map((s) => `${parseDigest(s.diffId).hex}/layer.tar`);
    const manifestJson = Buffer.from(
      JSON.stringify([{ Config: configName, RepoTags: this.repoTags, Layers: layerNames }]),
    );

    const pack = tar.pack();
    const header = (name: string, size: number, type: 'file' | 'directory' = 'file') => ({
      name,
      size,
      type,
      mode: type === 'directory' ? 0o755 : 0o644,
      mtime: new Date(0),
      uid: 0,
      gid: 0,
    });
    const addFile = async (name: string, file: string, size: number): Promise<void> => {
      // Errors reach the pipeline; the entry callback would only repeat them.
      const entry = pack.entry(header(name, size), () => {});
      await pipeline(createReadStream(file), entry);
    };
    (async () => {
      pack.entry(header('manifest.json', manifestJson.length), manifestJson);
      await addFile(configName, config.file, config.size);
      const written = new Set<string>();
      for (const [i, s] of layers.entries()) {
        const name = layerNames[i]!;
        if (written.has(name)) continue;
        written.add(name);
        pack.entry(header(name.slice(0, name.indexOf('/')), 0, 'directory'));
        await addFile(name, s.file, s.size);
      }
      pack.finalize();
    })().catch((e: unknown) => pack.destroy(e as Error));
    return pack as unknown as Readable;
  }

  /** Writes the archive to `path` (via a temporary name, so a failed write leaves no half archive). */
  async writeFile(path: string): Promise<void> {
    const tmp = `${path}.sluice-${process.pid}.part`;
    try {
      await pipeline(await this.archive(), createWriteStream(tmp));
      await rename(tmp, path);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }
}
