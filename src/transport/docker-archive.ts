import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import { DockerArchiveSource, type ArchiveSelection } from './docker-archive-read.js';
import { ARCHIVE_WRITE_DIGEST_CHANGE, DockerArchiveWriter } from './docker-archive-write.js';
import { familiarName, parseTaggedName } from './docker-names.js';
import type { TransportOptions } from './options.js';
import type { ImageDestination, ImageSource, PutManifestOptions, RawManifest } from './transport.js';

/** `FILE[:NAME:TAG]` or `FILE:@INDEX`, split as skopeo does (the path ends at the first colon). */
export function parseDockerArchiveReference(rest: string): { path: string; selection: ArchiveSelection } {
  const colon = rest.indexOf(':');
  const path = colon >= 0 ? rest.slice(0, colon) : rest;
  const ref = colon >= 0 ? rest.slice(colon + 1) : '';
  if (path === '') throw new Error('docker-archive: needs a file: docker-archive:FILE[:NAME:TAG]');
  if (ref === '') return { path, selection: undefined };
  if (ref.startsWith('@')) {
    const n = Number(ref.slice(1));
    if (!Number.isSafeInteger(n) || n < 0)
      throw new Error(`docker-archive:${rest}: @INDEX must be a non-negative number`);
    return { path, selection: { index: n } };
  }
  parseTaggedName(ref);
  return { path, selection: { name: ref } };
}

/** Opens a `docker save` archive for reading. */
export async function openDockerArchiveSource(rest: string, _opts: TransportOptions = {}): Promise<ImageSource> {
  const { path, selection } = parseDockerArchiveReference(rest);
  return DockerArchiveSource.open(path, selection, `docker-archive:${rest}`);
}

/** A destination that spools blobs into a Docker archive; subclasses decide where the archive goes at commit. */
export abstract class SpooledArchiveDestination implements ImageDestination {
  readonly singleImage = true;
  abstract readonly digestChange: string;
  abstract readonly tag?: string;

  constructor(
    readonly description: string,
    protected readonly spoolDir: string,
    protected readonly writer: DockerArchiveWriter,
  ) {}

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    return this.writer.has(descriptor.digest);
  }

  async putBlob(descriptor: Descriptor, body: Readable): Promise<void> {
    await this.writer.putBlob(descriptor, body);
  }

  async putManifest(manifest: RawManifest, tag?: string, options?: PutManifestOptions): Promise<void> {
    this.writer.putManifest(manifest, tag, options);
  }

  abstract commit(): Promise<void>;

  async close(): Promise<void> {
    await rm(this.spoolDir, { recursive: true, force: true });
  }
}

/** A Docker archive being written: blobs are spooled, the file appears at commit. */
export class DockerArchiveDestination extends SpooledArchiveDestination {
  readonly digestChange = ARCHIVE_WRITE_DIGEST_CHANGE;
  readonly tag?: string;

  constructor(
    description: string,
    private readonly path: string,
    spoolDir: string,
    writer: DockerArchiveWriter,
    tag: string | undefined,
  ) {
    super(description, spoolDir, writer);
    if (tag) this.tag = tag;
  }

  async commit(): Promise<void> {
    await this.writer.writeFile(this.path);
  }
}

/** Opens `FILE[:NAME:TAG]` for writing; NAME:TAG becomes the RepoTags `docker load` applies. */
export async function openDockerArchiveDestination(
  rest: string,
  opts: TransportOptions = {},
): Promise<ImageDestination> {
  const { path, selection } = parseDockerArchiveReference(rest);
  if (selection && 'index' in selection)
    throw new Error(`docker-archive:${rest}: @INDEX only selects an image to read`);
  const named = selection ? parseTaggedName(selection.name) : undefined;
  const spoolDir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'sluice-docker-archive-'));
  const writer = new DockerArchiveWriter(spoolDir, named ? [familiarName(named)] : []);
  return new DockerArchiveDestination(`docker-archive:${rest}`, path, spoolDir, writer, named?.tag);
}
