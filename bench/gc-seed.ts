// The gc workload's storage root: repositories, manifests and blobs written straight into Distribution's layout
// (as the listing bench does), with a known amount of garbage, so both collectors can be checked to agree.
import { createHash } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inPool } from './workloads.js';

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
/** Layers of each tagged image that no other image has. */
const OWN_LAYERS = 5;
/** Layers of each untagged (overwritten) image that no other image has. */
const OLD_LAYERS = 2;
/** One repository in this many also holds an untagged manifest: the image its tag pointed at before. */
const UNTAGGED_EVERY = 3;

/** What a seeded root holds, counted as it was written: what each sweep must leave. */
export interface GcRoot {
  root: string;
  repositories: number;
  blobs: number;
  /** Blobs no manifest names: garbage for both sweeps. */
  orphans: number;
  /** Blobs only untagged manifests name (their own bytes included): garbage only with delete-untagged. */
  untaggedOnly: number;
  /** A repository and tag that a live manifest sits under, for the serving row. */
  sample: { repository: string; tag: string; mediaType: string };
}

/** The repositories, blobs and the size of the shared base-layer pool for a total. */
export function gcShape(repos: number, blobs: number): { pool: number; untagged: number; orphans: number } {
  // Every pool layer is used by some tagged image, so none of them is garbage.
  const pool = Math.max(1, Math.min(repos, Math.floor(blobs / 100)));
  const untagged = Math.floor(repos / UNTAGGED_EVERY);
  const used = pool + repos * (2 + OWN_LAYERS) + untagged * (2 + OLD_LAYERS);
  if (used > blobs) throw new Error(`gc bench: ${repos} repositories need at least ${used} blobs (got ${blobs})`);
  return { pool, untagged, orphans: blobs - used };
}

function digestOf(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** Small bytes of a few sizes (64 B to 4 KiB), distinct per name: blobs on disk cost a block each anyway. */
function bytesFor(name: string): Buffer {
  const size = 64 << (createHash('md5').update(name).digest()[0]! % 7);
  return Buffer.alloc(size, `${name}\n`);
}

interface Blob {
  digest: string;
  bytes: Buffer;
}

function blob(bytes: Buffer): Blob {
  return { digest: digestOf(bytes), bytes };
}

function manifestOf(config: Blob, layers: Blob[]): Blob {
  const desc = (mediaType: string, b: Blob) => ({ mediaType, size: b.bytes.length, digest: b.digest });
  const m = {
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST,
    config: desc(DOCKER_CONFIG, config),
    layers: layers.map((l) => desc(DOCKER_LAYER, l)),
  };
  return blob(Buffer.from(JSON.stringify(m, null, 3)));
}

/**
 * Writes `repos` repositories and `blobs` blobs under `root`: each repository `bench/gc/rNNNNNN` has `latest`
 * naming an image of its own layers plus one from a shared pool; every third also holds the image `latest`
 * named before (untagged, two layers of its own plus a pool layer); the remaining blobs are orphans, each
 * with a layer link in some repository as an abandoned push leaves them.
 */
export async function seedGcRoot(root: string, repos: number, blobs: number): Promise<GcRoot> {
  const { pool, untagged, orphans } = gcShape(repos, blobs);
  const files = new Map<string, Buffer | string>();
  const v2 = join(root, 'docker/registry/v2');
  const hex = (d: string) => d.slice('sha256:'.length);
  const putBlob = (b: Blob) =>
    files.set(join(v2, 'blobs/sha256', hex(b.digest).slice(0, 2), hex(b.digest), 'data'), b.bytes);
  const link = (path: string, d: string) => files.set(join(v2, 'repositories', path), d);
  const repoName = (i: number) => `bench/gc/r${String(i).padStart(6, '0')}`;
  const base = Array.from({ length: pool }, (_, i) => blob(bytesFor(`pool ${i}`)));
  base.forEach(putBlob);
  let untaggedOnly = 0;
  const image = (repo: string, i: number, label: string, own: number) => {
    const layers = [
      base[i % pool]!,
      ...Array.from({ length: own }, (_, j) => blob(bytesFor(`${repo} ${label} layer ${j}`))),
    ];
    const config = blob(
      Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          created: label,
          repo,
          rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
        }),
      ),
    );
    const manifest = manifestOf(config, layers);
    for (const b of [manifest, config, ...layers]) putBlob(b);
    for (const b of [config, ...layers]) link(`${repo}/_layers/sha256/${hex(b.digest)}/link`, b.digest);
    link(`${repo}/_manifests/revisions/sha256/${hex(manifest.digest)}/link`, manifest.digest);
    // A tag's index keeps every digest it ever named, as Distribution writes it.
    link(`${repo}/_manifests/tags/latest/index/sha256/${hex(manifest.digest)}/link`, manifest.digest);
    return manifest;
  };
  for (let i = 0; i < repos; i++) {
    const repo = repoName(i);
    if (i % UNTAGGED_EVERY === 0 && i / UNTAGGED_EVERY < untagged) {
      image(repo, i + 1, 'old', OLD_LAYERS);
      untaggedOnly += 2 + OLD_LAYERS;
    }
    const current = image(repo, i, 'current', OWN_LAYERS);
    link(`${repo}/_manifests/tags/latest/current/link`, current.digest);
  }
  for (let i = 0; i < orphans; i++) {
    const b = blob(bytesFor(`orphan ${i}`));
    putBlob(b);
    link(`${repoName(i % repos)}/_layers/sha256/${hex(b.digest)}/link`, b.digest);
  }
  const written = [...files.keys()].filter((p) => p.endsWith('/data')).length;
  if (written !== blobs) throw new Error(`gc bench: wrote ${written} blobs, meant ${blobs}`);
  await inPool([...files], 64, async ([path, content]) => {
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, content);
  });
  return {
    root,
    repositories: repos,
    blobs,
    orphans,
    untaggedOnly,
    sample: { repository: repoName(0), tag: 'latest', mediaType: DOCKER_MANIFEST },
  };
}

/** Blobs under `root` that still have their data. */
export async function countBlobs(root: string): Promise<number> {
  const dir = join(root, 'docker/registry/v2/blobs/sha256');
  let n = 0;
  for (const prefix of await readdir(dir).catch(() => [])) {
    for (const h of await readdir(join(dir, prefix))) {
      if ((await readdir(join(dir, prefix, h)).catch((): string[] => [])).includes('data')) n++;
    }
  }
  return n;
}
