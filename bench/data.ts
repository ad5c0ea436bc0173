import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';

/** A file of random bytes on disk and its digest, so pushes stream it without holding it in memory. */
export interface DataFile {
  path: string;
  size: number;
  digest: string;
}

const CHUNK = 1 << 20;

/** Writes `size` random bytes to `path` one chunk at a time, hashing as it goes. */
export async function randomFile(path: string, size: number): Promise<DataFile> {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  let left = size;
  while (left > 0) {
    const chunk = randomBytes(Math.min(CHUNK, left));
    hash.update(chunk);
    left -= chunk.length;
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return { path, size, digest: `sha256:${hash.digest('hex')}` };
}

/** Sizes spread evenly on a log scale from `min` to `max` bytes. */
export function logSizes(count: number, min: number, max: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(Math.round(min * Math.pow(max / min, count === 1 ? 0 : i / (count - 1))));
  return out;
}

function sha256(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * Writes an OCI image layout with one image of random layers (as skopeo would find a built image),
 * tagged `tag`. Layers are opaque random bytes: skopeo copies them without looking inside.
 */
export async function writeImageLayout(
  dir: string,
  layerSizes: number[],
  tag = 'latest',
): Promise<{ totalBytes: number; manifestDigest: string }> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const layers: { mediaType: string; digest: string; size: number }[] = [];
  let total = 0;
  for (const [i, size] of layerSizes.entries()) {
    const tmp = join(dir, `layer-${i}.tmp`);
    const f = await randomFile(tmp, size);
    await rename(tmp, join(blobs, f.digest.slice('sha256:'.length)));
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: f.digest, size });
    total += size;
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    }),
  );
  const configDigest = sha256(config);
  await writeFile(join(blobs, configDigest.slice(7)), config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers,
    }),
  );
  const manifestDigest = sha256(manifest);
  await writeFile(join(blobs, manifestDigest.slice(7)), manifest);
  total += config.length + manifest.length;
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: manifestDigest,
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  return { totalBytes: total, manifestDigest };
}
