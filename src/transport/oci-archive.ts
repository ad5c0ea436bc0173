import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Readable } from 'node:stream';
import { LayoutDestination, LayoutSource, parseLayoutReference } from './oci-layout.js';
import type { TransportOptions } from './options.js';
import type { ImageDestination, ImageSource, PutManifestOptions, RawManifest } from './transport.js';
import type { ReadLimit } from './bounded.js';

/** Unpacks a tar file into `dir`, streaming each entry to disk; paths that leave `dir` are refused. */
export async function extractTar(file: string, dir: string): Promise<void> {
  const extract = tar.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const name = normalize(entry.header.name);
      if (name.startsWith('..') || name.startsWith(sep))
        throw new Error(`archive entry "${entry.header.name}" leaves the archive`);
      const target = join(dir, name);
      if (entry.header.type === 'directory') {
        await mkdir(target, { recursive: true });
        entry.resume();
      } else if (entry.header.type === 'file') {
        await mkdir(dirname(target), { recursive: true });
        await pipeline(entry, createWriteStream(target));
      } else {
        entry.resume();
      }
    }
  })();
  await Promise.all([pipeline(createReadStream(file), extract), done]);
}

/** Packs every file under `dir` into the tar `file` (names sorted, times zeroed), streaming. */
export async function packDir(dir: string, file: string): Promise<void> {
  const files: string[] = [];
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) files.push(relative(dir, p).split(sep).join('/'));
    }
  }
  await walk(dir);
  files.sort();
  const pack = tar.pack();
  const tmp = `${file}.tmp`;
  const writing = pipeline(pack, createWriteStream(tmp));
  for (const name of files) {
    const p = join(dir, name);
    const size = (await stat(p)).size;
    await new Promise<void>((resolve, reject) => {
      const entry = pack.entry({ name, size, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }, (err) =>
        err ? reject(err) : resolve(),
      );
      createReadStream(p).on('error', reject).pipe(entry);
    });
  }
  pack.finalize();
  await writing;
  await rename(tmp, file);
}

/** Reads `oci-archive:FILE[:REF]`: the archive is unpacked into a temporary layout, as skopeo does. */
export async function openOciArchiveSource(rest: string, opts: TransportOptions): Promise<ImageSource> {
  const { dir: file, ref } = parseLayoutReference(rest);
  if (!file) throw new Error('oci-archive: needs a file (oci-archive:FILE[:REF])');
  await stat(file);
  const tmp = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'sluice-oci-archive-'));
  try {
    await extractTar(file, tmp);
    const layout = await LayoutSource.open(tmp, ref, `oci-archive:${rest}`);
    return new ArchiveSource(layout, tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

class ArchiveSource implements ImageSource {
  readonly description: string;
  constructor(
    private readonly layout: LayoutSource,
    private readonly tmp: string,
  ) {
    this.description = layout.description;
  }
  getManifest(digest?: Digest, limit?: ReadLimit): Promise<RawManifest> {
    return this.layout.getManifest(digest, limit);
  }
  getBlob(descriptor: Descriptor): Promise<Readable> {
    return this.layout.getBlob(descriptor);
  }
  listTags(): Promise<string[]> {
    return this.layout.listTags();
  }
  listReferrers(subject: Digest): Promise<Descriptor[]> {
    return this.layout.listReferrers(subject);
  }
  getTaggedManifest(tag: string, limit?: ReadLimit): Promise<RawManifest | undefined> {
    return this.layout.getTaggedManifest(tag, limit);
  }
  async close(): Promise<void> {
    await rm(this.tmp, { recursive: true, force: true });
  }
}

/** Writes `oci-archive:FILE[:REF]`: a layout is assembled in a temporary folder and packed on commit. */
export async function openOciArchiveDestination(rest: string, opts: TransportOptions): Promise<ImageDestination> {
  const { dir: file, ref } = parseLayoutReference(rest);
  if (!file) throw new Error('oci-archive: needs a file (oci-archive:FILE[:REF])');
  const tmp = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'sluice-oci-archive-'));
  const layout = await LayoutDestination.open(tmp, ref, `oci-archive:${rest}`);
  return new ArchiveDestination(layout, tmp, file);
}

class ArchiveDestination implements ImageDestination {
  readonly description: string;
  readonly prefersOci = true;
  readonly tag?: string;
  constructor(
    private readonly layout: LayoutDestination,
    private readonly tmp: string,
    private readonly file: string,
  ) {
    this.description = layout.description;
    if (layout.tag) this.tag = layout.tag;
  }
  hasBlob(descriptor: Descriptor): Promise<boolean> {
    return this.layout.hasBlob(descriptor);
  }
  putBlob(descriptor: Descriptor, body: Readable): Promise<void> {
    return this.layout.putBlob(descriptor, body);
  }
  putManifest(manifest: RawManifest, tag?: string, options?: PutManifestOptions): Promise<void> {
    return this.layout.putManifest(manifest, tag, options);
  }
  async commit(): Promise<void> {
    await this.layout.commit();
    await packDir(this.tmp, this.file);
  }
  async close(): Promise<void> {
    await rm(this.tmp, { recursive: true, force: true });
  }
}
