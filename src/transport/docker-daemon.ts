import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { DockerArchiveSource } from './docker-archive-read.js';
import { SpooledArchiveDestination } from './docker-archive.js';
import { DockerArchiveWriter } from './docker-archive-write.js';
import { defaultDaemonHost, DockerEngine } from './docker-engine.js';
import { familiarName, parseTaggedName } from './docker-names.js';
import type { TransportOptions } from './options.js';
import type { ImageDestination, ImageSource, PutManifestOptions, RawManifest } from './transport.js';

/** Why an image read from a daemon has a different manifest digest than in its registry. */
export const DAEMON_READ_DIGEST_CHANGE =
  'the Docker daemon keeps no registry manifest: its export holds the config and uncompressed layers, so Sluice ' +
  'describes the image with a new Docker schema 2 manifest (new manifest digest; the config digest, i.e. the image ID, is kept)';

/** Why loading into a daemon changes the manifest digest. */
export const DAEMON_WRITE_DIGEST_CHANGE =
  'the Docker daemon stores the config and uncompressed layers, not the manifest: compressed layers are unpacked and ' +
  'the image gets a new manifest digest when it leaves the daemon again; the image ID (config digest) stays the same';

// Docker reads a full 64-hex string as an image ID rather than a repository name.
const IMAGE_ID = /^(sha256:)?[a-f0-9]{64}$/;

/**
 * An image exported from a daemon: the export is spooled to a file and read as a Docker archive.
 * The export happens on first use, so listing tags does not pay for it.
 */
class DockerDaemonSource implements ImageSource {
  readonly digestChange = DAEMON_READ_DIGEST_CHANGE;
  readonly uncompressedLayers = true;
  private archive: Promise<DockerArchiveSource> | undefined;
  private spoolDir: string | undefined;

  constructor(
    readonly description: string,
    private readonly engine: DockerEngine,
    private readonly name: string,
    private readonly repository: { registry: string; repository: string } | undefined,
    private readonly tmpDir: string,
  ) {}

  private exported(): Promise<DockerArchiveSource> {
    this.archive ??= (async () => {
      this.spoolDir = await mkdtemp(join(this.tmpDir, 'sluice-docker-daemon-'));
      const file = join(this.spoolDir, 'export.tar');
      await pipeline(await this.engine.exportImages([this.name]), createWriteStream(file));
      return DockerArchiveSource.open(file, this.repository ? { name: this.name } : undefined, this.description);
    })();
    return this.archive;
  }

  async getManifest(digest?: Digest): Promise<RawManifest> {
    return (await this.exported()).getManifest(digest);
  }

  async getBlob(descriptor: Descriptor): Promise<Readable> {
    return (await this.exported()).getBlob(descriptor);
  }

  /** Tags the daemon has for this image's repository (from RepoTags). */
  async listTags(): Promise<string[]> {
    if (!this.repository) return [];
    return listDaemonTags(this.engine, this.repository);
  }

  async close(): Promise<void> {
    await this.archive?.catch(() => undefined);
    await this.engine.close();
    if (this.spoolDir) await rm(this.spoolDir, { recursive: true, force: true });
  }
}

/** Tags of one repository among a daemon's images. */
export async function listDaemonTags(
  engine: DockerEngine,
  repo: { registry: string; repository: string },
): Promise<string[]> {
  const tags = new Set<string>();
  for (const image of await engine.listImages()) {
    for (const t of image.repoTags) {
      try {
        const r = parseTaggedName(t);
        if (r.registry === repo.registry && r.repository === repo.repository) tags.add(r.tag);
      } catch {
        // a RepoTag Sluice cannot parse names no repository it could match
      }
    }
  }
  return [...tags].sort();
}

/** Opens `docker-daemon:NAME[:TAG]` (or an image ID) for reading; the image is exported on first use. */
export async function openDockerDaemonSource(rest: string, opts: TransportOptions = {}): Promise<ImageSource> {
  const engine = new DockerEngine(defaultDaemonHost(opts.daemonHost));
  try {
    const named = IMAGE_ID.test(rest) ? undefined : parseTaggedName(rest);
    const name = named ? familiarName(named) : rest;
    if ((await engine.imageId(name)) === undefined)
      throw new Error(`the Docker daemon at ${engine.host} has no image ${name}`);
    return new DockerDaemonSource(`docker-daemon:${rest}`, engine, name, named, opts.tmpDir ?? tmpdir());
  } catch (e) {
    await engine.close();
    throw e;
  }
}

/** An image being loaded into a daemon: blobs are spooled, `POST /images/load` streams the archive at commit. */
class DockerDaemonDestination extends SpooledArchiveDestination {
  readonly digestChange = DAEMON_WRITE_DIGEST_CHANGE;
  readonly tag: string;
  private configDigest: string | undefined;

  constructor(
    description: string,
    private readonly engine: DockerEngine,
    spoolDir: string,
    private readonly name: string,
    tag: string,
  ) {
    super(description, spoolDir, new DockerArchiveWriter(spoolDir, [name]));
    this.tag = tag;
  }

  override async putManifest(manifest: RawManifest, tag?: string, options?: PutManifestOptions): Promise<void> {
    await super.putManifest(manifest, tag, options);
    const doc = JSON.parse(manifest.bytes.toString('utf8')) as { config?: { digest?: string } };
    if (doc.config?.digest && (options?.top || tag !== undefined || this.configDigest === undefined))
      this.configDigest = doc.config.digest;
  }

  /** Loads the image and checks that the daemon now has it under NAME:TAG with the expected image ID. */
  async commit(): Promise<void> {
    await this.engine.loadImages(await this.writer.archive());
    const id = await this.engine.imageId(this.name);
    if (id === undefined)
      throw new Error(`the Docker daemon at ${this.engine.host} accepted the image but has no ${this.name} afterwards`);
    if (this.configDigest && id !== this.configDigest) {
      throw new Error(
        `the Docker daemon at ${this.engine.host} has ${this.name} as image ${id}, expected ${this.configDigest}`,
      );
    }
  }

  override async close(): Promise<void> {
    await this.engine.close();
    await super.close();
  }
}

/** Opens `docker-daemon:NAME[:TAG]` for writing. */
export async function openDockerDaemonDestination(
  rest: string,
  opts: TransportOptions = {},
): Promise<ImageDestination> {
  if (IMAGE_ID.test(rest)) throw new Error(`docker-daemon:${rest}: an image is loaded under NAME:TAG, not an ID`);
  const named = parseTaggedName(rest);
  const engine = new DockerEngine(defaultDaemonHost(opts.daemonHost));
  const spoolDir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'sluice-docker-daemon-'));
  return new DockerDaemonDestination(`docker-daemon:${rest}`, engine, spoolDir, familiarName(named), named.tag);
}
