import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { digestOf, type Digest } from '../../src/oci/digest.js';
import type { Descriptor } from '../../src/oci/descriptor.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import type { Platform } from '../../src/oci/platform.js';

/** A blob made by a test: bytes and descriptor. */
export interface TestBlob {
  bytes: Buffer;
  descriptor: Descriptor;
}

/** A test image: manifest bytes and every blob it needs. */
export interface TestImage {
  manifest: Buffer;
  digest: Digest;
  mediaType: string;
  config: TestBlob;
  layers: TestBlob[];
  platform: Platform;
}

/** A test index over images. */
export interface TestIndex {
  manifest: Buffer;
  digest: Digest;
  mediaType: string;
  images: TestImage[];
}

/** Builds a reproducible tar of the given files. */
export async function makeTar(files: Record<string, string | Buffer>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((res, rej) => {
    pack.on('end', () => res());
    pack.on('error', rej);
  });
  for (const [name, content] of Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const data = typeof content === 'string' ? Buffer.from(content) : content;
    await new Promise<void>((res, rej) =>
      pack.entry({ name, size: data.length, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }, data, (err) =>
        err ? rej(err) : res(),
      ),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

function blob(bytes: Buffer, mediaType: string): TestBlob {
  return { bytes, descriptor: { mediaType, digest: digestOf(bytes), size: bytes.length } };
}

/** Builds an image with one gzip layer per entry of `layers` (each a file map). */
export async function makeImage(
  opts: {
    layers?: Record<string, string | Buffer>[];
    platform?: Platform;
    format?: 'oci' | 'docker';
    label?: string;
  } = {},
): Promise<TestImage> {
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const docker = opts.format === 'docker';
  const layerFiles = opts.layers ?? [{ 'hello.txt': `hello from ${platform.architecture} ${opts.label ?? ''}\n` }];
  const layers: TestBlob[] = [];
  const diffIds: string[] = [];
  for (const files of layerFiles) {
    const t = await makeTar(files);
    diffIds.push(digestOf(t));
    layers.push(blob(gzipSync(t), docker ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip));
  }
  const configDoc = {
    created: '1970-01-01T00:00:00Z',
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: platform.os,
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['/bin/sh'],
      Labels: { 'test.label': opts.label ?? 'x' },
    },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: layerFiles.map(() => ({ created: '1970-01-01T00:00:00Z', created_by: 'sluice test' })),
  };
  const config = blob(Buffer.from(JSON.stringify(configDoc)), docker ? MediaType.DockerConfig : MediaType.OciConfig);
  const mediaType = docker ? MediaType.DockerManifest : MediaType.OciManifest;
  const manifest = Buffer.from(
    JSON.stringify(
      { schemaVersion: 2, mediaType, config: config.descriptor, layers: layers.map((l) => l.descriptor) },
      null,
      2,
    ),
  );
  return { manifest, digest: digestOf(manifest), mediaType, config, layers, platform };
}

/** Builds an index over images (OCI index, or a Docker manifest list with `format: 'docker'`). */
export function makeIndex(images: TestImage[], format: 'oci' | 'docker' = 'oci'): TestIndex {
  const mediaType = format === 'docker' ? MediaType.DockerManifestList : MediaType.OciIndex;
  const manifest = Buffer.from(
    JSON.stringify(
      {
        schemaVersion: 2,
        mediaType,
        manifests: images.map((i) => ({
          mediaType: i.mediaType,
          digest: i.digest,
          size: i.manifest.length,
          platform: i.platform,
        })),
      },
      null,
      2,
    ),
  );
  return { manifest, digest: digestOf(manifest), mediaType, images };
}

/** Three platforms, the usual shape of a multi-arch image. */
export async function makeMultiArch(label = 'multi'): Promise<TestIndex> {
  const platforms: Platform[] = [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
    { os: 'linux', architecture: 's390x' },
  ];
  const images = [];
  for (const p of platforms) images.push(await makeImage({ platform: p, label }));
  return makeIndex(images);
}

async function writeBlob(dir: string, bytes: Buffer): Promise<void> {
  const d = digestOf(bytes);
  const [alg, hex] = d.split(':') as [string, string];
  await mkdir(join(dir, 'blobs', alg), { recursive: true });
  await writeFile(join(dir, 'blobs', alg, hex), bytes);
}

/** Writes images and indexes into an OCI image layout directory, each tagged by `ref.name`. */
export async function writeOciLayout(
  dir: string,
  entries: { tag: string; image: TestImage | TestIndex }[],
): Promise<void> {
  await mkdir(join(dir, 'blobs'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const manifests = [];
  for (const { tag, image } of entries) {
    const imgs = 'images' in image ? image.images : [image];
    for (const img of imgs) {
      await writeBlob(dir, img.manifest);
      await writeBlob(dir, img.config.bytes);
      for (const l of img.layers) await writeBlob(dir, l.bytes);
    }
    await writeBlob(dir, image.manifest);
    manifests.push({
      mediaType: image.mediaType,
      digest: image.digest,
      size: image.manifest.length,
      annotations: { 'org.opencontainers.image.ref.name': tag },
    });
  }
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }),
  );
}

/** Uploads one blob monolithically (POST ?digest=). */
export async function pushBlob(url: string, repo: string, b: TestBlob | Buffer): Promise<Digest> {
  const bytes = Buffer.isBuffer(b) ? b : b.bytes;
  const d = digestOf(bytes);
  const r = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${d}`, {
    method: 'POST',
    body: bytes,
    headers: { 'content-type': 'application/octet-stream' },
  });
  if (r.status !== 201) throw new Error(`blob push ${d} failed: ${r.status} ${await r.text()}`);
  return d;
}

/** Uploads manifest bytes under a tag or digest. */
export async function pushManifest(
  url: string,
  repo: string,
  ref: string,
  bytes: Buffer,
  mediaType: string,
): Promise<Response> {
  return fetch(`${url}/v2/${repo}/manifests/${ref}`, {
    method: 'PUT',
    body: bytes,
    headers: { 'content-type': mediaType },
  });
}

/** Pushes an image (blobs, then manifest) or an index (every image, then the index). */
export async function pushImage(url: string, repo: string, tag: string, image: TestImage | TestIndex): Promise<void> {
  if ('images' in image) {
    for (const img of image.images) await pushImage(url, repo, img.digest, img);
  } else {
    await pushBlob(url, repo, image.config);
    for (const l of image.layers) await pushBlob(url, repo, l);
  }
  const r = await pushManifest(url, repo, tag, image.manifest, image.mediaType);
  if (r.status !== 201) throw new Error(`manifest push ${repo}:${tag} failed: ${r.status} ${await r.text()}`);
}

/** Pushes `image` with `subject` added: an ordinary image posing as a referrer (signature, SBOM) of `subject`. */
export async function pushAsReferrer(url: string, repo: string, image: TestImage, subject: TestImage): Promise<Digest> {
  const doc = JSON.parse(image.manifest.toString()) as Record<string, unknown>;
  doc.subject = { mediaType: subject.mediaType, digest: subject.digest, size: subject.manifest.length };
  const bytes = Buffer.from(JSON.stringify(doc));
  await pushBlob(url, repo, image.config);
  for (const l of image.layers) await pushBlob(url, repo, l);
  const digest = digestOf(bytes);
  const r = await pushManifest(url, repo, digest, bytes, image.mediaType);
  if (r.status !== 201) throw new Error(`referrer push ${repo}@${digest} failed: ${r.status} ${await r.text()}`);
  return digest;
}
