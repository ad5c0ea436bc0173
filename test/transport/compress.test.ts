import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { digestOf } from '../../src/oci/digest.js';
import { parseManifest, type ImageManifest } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { scratch } from '../helpers/clients.js';
import { makeImage, makeTar, writeOciLayout, type TestImage } from '../helpers/images.js';
import { bytesOf } from '../helpers/oci-http.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { sluice, sluiceCopy } from '../helpers/sluice-cli.js';
import { needTools, runOk } from '../helpers/tools.js';

function diffIdsOf(config: Buffer): string[] {
  return (JSON.parse(config.toString()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
}

/** An image whose layers compress well, as most do (text, binaries with padding). */
async function compressibleImage(label: string): Promise<TestImage> {
  const text = (n: number) => Array.from({ length: n }, (_, i) => `line ${i} of a file that repeats itself\n`).join('');
  return makeImage({
    layers: [{ 'usr/share/doc/a.txt': text(4000) }, { 'etc/b.conf': text(2000) }],
    format: 'docker',
    label,
  });
}

/** Writes `image` as a Docker archive with Sluice (which stores the layers uncompressed, as docker save does). */
async function dockerArchive(dir: string, image: TestImage): Promise<string> {
  const layout = join(dir, 'layout');
  await writeOciLayout(layout, [{ tag: 'v1', image }]);
  const file = join(dir, 'image.tar');
  await sluiceCopy(`oci:${layout}:v1`, `docker-archive:${file}:team/app:v1`);
  return file;
}

async function registryManifest(
  reg: TestRegistry,
  repo: string,
  ref: string,
): Promise<{ bytes: Buffer; digest: string | null; m: ImageManifest }> {
  const r = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, {
    headers: { accept: `${MediaType.DockerManifest}, ${MediaType.OciManifest}` },
  });
  assert.equal(r.status, 200);
  const bytes = await bytesOf(r);
  return { bytes, digest: r.headers.get('docker-content-digest'), m: parseManifest(bytes) as ImageManifest };
}

/** Every layer is gzip, smaller than it was, and unpacks to the diff_id the (unchanged) config names. */
async function assertGzipLayers(
  reg: TestRegistry,
  repo: string,
  m: ImageManifest,
  image: TestImage,
  gzipType: string,
): Promise<void> {
  assert.equal(m.config.digest, image.config.descriptor.digest, 'the config (image ID) is unchanged');
  const diffIds = diffIdsOf(image.config.bytes);
  assert.equal(m.layers.length, diffIds.length);
  for (const [i, l] of m.layers.entries()) {
    assert.equal(l.mediaType, gzipType);
    const blob = await bytesOf(await fetch(`${reg.url}/v2/${repo}/blobs/${l.digest}`));
    assert.equal(blob.length, l.size);
    assert.equal(digestOf(blob), l.digest);
    const plain = gunzipSync(blob);
    assert.equal(digestOf(plain), diffIds[i], `layer ${i} unpacks to its diff_id`);
    assert.ok(l.size < plain.length / 4, `layer ${i} is compressed: ${l.size} bytes for ${plain.length}`);
  }
}

test('docker-archive: → registry compresses the layers (gzip), diff_ids unchanged; none keeps them; --preserve-digests refuses', async () => {
  const s = await scratch();
  const reg = await startRegistry();
  try {
    const image = await compressibleImage('compress-registry');
    const file = await dockerArchive(s.dir, image);

    const sum = await sluiceCopy(`docker-archive:${file}`, `docker://${reg.host}/team/app:v1`);
    const { m, digest, bytes } = await registryManifest(reg, 'team/app', 'v1');
    assert.equal(digest, sum.digest);
    assert.equal(m.mediaType, MediaType.DockerManifest);
    await assertGzipLayers(reg, 'team/app', m, image, MediaType.DockerLayerGzip);
    assert.equal(
      sum.bytesSent,
      m.layers.reduce((a, l) => a + l.size, m.config.size),
      'only compressed bytes went over the wire',
    );
    assert.ok(
      sum.warnings.some((w) => /digest/.test(w)),
      sum.warnings.join('; '),
    );
    // Copying again sends nothing: gzip output is the same each time, so the blobs are found.
    const again = await sluiceCopy(`docker-archive:${file}`, `docker://${reg.host}/team/app:v1`);
    assert.equal(again.digest, sum.digest);
    assert.equal(again.bytesSent, 0);
    assert.equal(digestOf(bytes), sum.digest);

    const plain = await sluiceCopy(`docker-archive:${file}`, `docker://${reg.host}/team/plain:v1`, [
      '--dest-compress-format',
      'none',
    ]);
    const kept = await registryManifest(reg, 'team/plain', 'v1');
    assert.equal(kept.digest, plain.digest);
    assert.deepEqual(
      kept.m.layers.map((l) => l.digest),
      diffIdsOf(image.config.bytes),
    );
    assert.deepEqual(
      kept.m.layers.map((l) => l.mediaType),
      [MediaType.DockerLayer, MediaType.DockerLayer],
    );

    const refused = await sluice([
      'copy',
      '--preserve-digests',
      `docker-archive:${file}`,
      `docker://${reg.host}/team/refused:v1`,
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^sluice: --preserve-digests/);
    assert.equal((await fetch(`${reg.url}/v2/team/refused/manifests/v1`)).status, 404);
  } finally {
    await reg.close();
    await s.cleanup();
  }
});

test('docker-archive: → oci: compresses too; the layout reads back and skopeo takes it', async (t) => {
  const s = await scratch();
  try {
    const image = await compressibleImage('compress-layout');
    const file = await dockerArchive(s.dir, image);
    const dir = join(s.dir, 'out');
    const sum = await sluiceCopy(`docker-archive:${file}`, `oci:${dir}:v1`);
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.deepEqual(
      index.manifests.map((d) => d.digest),
      [sum.digest],
    );
    const m = parseManifest(await readFile(join(dir, 'blobs', 'sha256', sum.digest.slice(7)))) as ImageManifest;
    // A new manifest for a layout is an OCI one: skopeo and other tools find only those in a layout.
    assert.equal(m.mediaType, MediaType.OciManifest);
    assert.equal(m.config.mediaType, MediaType.OciConfig);
    assert.equal(m.config.digest, image.config.descriptor.digest);
    const diffIds = diffIdsOf(image.config.bytes);
    for (const [i, l] of m.layers.entries()) {
      assert.equal(l.mediaType, MediaType.OciLayerGzip);
      const blob = await readFile(join(dir, 'blobs', 'sha256', l.digest.slice(7)));
      assert.equal(digestOf(gunzipSync(blob)), diffIds[i]);
    }
    const plain = await sluiceCopy(`docker-archive:${file}`, `oci:${join(s.dir, 'plain')}:v1`, [
      '--dest-compress-format',
      'none',
    ]);
    const pm = parseManifest(
      await readFile(join(s.dir, 'plain', 'blobs', 'sha256', plain.digest.slice(7))),
    ) as ImageManifest;
    assert.equal(pm.mediaType, MediaType.OciManifest);
    assert.deepEqual(
      pm.layers.map((l) => [l.mediaType, l.digest]),
      diffIds.map((d) => [MediaType.OciLayer, d]),
    );
    if (!needTools(t, 'skopeo')) return;
    await runOk('skopeo', ['copy', `oci:${dir}:v1`, `docker-archive:${join(s.dir, 'back.tar')}:back:v1`]);
    const back = await sluice(['inspect', `docker-archive:${join(s.dir, 'back.tar')}`]);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(
      (JSON.parse(back.stdout) as { Config: { digest: string } }).Config.digest,
      image.config.descriptor.digest,
    );
  } finally {
    await s.cleanup();
  }
});

test('a Docker 25+ archive (manifest kept, layers uncompressed) is compressed with a warning, or kept whole under --preserve-digests', async () => {
  const s = await scratch();
  const reg = await startRegistry();
  try {
    const layerTar = await makeTar({ 'etc/hello': 'hello from a docker 25 archive\n'.repeat(500) });
    const diffId = digestOf(layerTar);
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {},
        rootfs: { type: 'layers', diff_ids: [diffId] },
      }),
    );
    const configDigest = digestOf(config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: configDigest, size: config.length },
        layers: [{ mediaType: MediaType.OciLayer, digest: diffId, size: layerTar.length }],
      }),
    );
    const manifestDigest = digestOf(manifest);
    const hex = (d: string) => d.slice('sha256:'.length);
    const file = join(s.dir, 'new.tar');
    await writeFile(
      file,
      await makeTar({
        'oci-layout': JSON.stringify({ imageLayoutVersion: '1.0.0' }),
        'index.json': JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.OciIndex,
          manifests: [{ mediaType: MediaType.OciManifest, digest: manifestDigest, size: manifest.length }],
        }),
        'manifest.json': JSON.stringify([
          {
            Config: `blobs/sha256/${hex(configDigest)}`,
            RepoTags: ['new:25'],
            Layers: [`blobs/sha256/${hex(diffId)}`],
          },
        ]),
        [`blobs/sha256/${hex(configDigest)}`]: config,
        [`blobs/sha256/${hex(diffId)}`]: layerTar,
        [`blobs/sha256/${hex(manifestDigest)}`]: manifest,
      }),
    );

    const sum = await sluiceCopy(`docker-archive:${file}`, `docker://${reg.host}/new:25`);
    assert.notEqual(sum.digest, manifestDigest);
    assert.ok(
      sum.warnings.some((w) => /uncompressed layers, written gzip-compressed/.test(w)),
      sum.warnings.join('; '),
    );
    const { m } = await registryManifest(reg, 'new', '25');
    assert.equal(m.mediaType, MediaType.OciManifest);
    assert.equal(m.layers[0]!.mediaType, MediaType.OciLayerGzip);
    assert.equal(
      digestOf(gunzipSync(await bytesOf(await fetch(`${reg.url}/v2/new/blobs/${m.layers[0]!.digest}`)))),
      diffId,
    );

    const kept = await sluiceCopy(`docker-archive:${file}`, `docker://${reg.host}/kept:25`, ['--preserve-digests']);
    assert.equal(kept.digest, manifestDigest);
    const forced = await sluice([
      'copy',
      '--preserve-digests',
      '--dest-compress-format',
      'gzip',
      `docker-archive:${file}`,
      `docker://${reg.host}/forced:25`,
    ]);
    assert.equal(forced.code, 1);
    assert.match(
      forced.stderr,
      /^sluice: --preserve-digests: compressing .* changes the manifest digest; pass --dest-compress-format none/,
    );
  } finally {
    await reg.close();
    await s.cleanup();
  }
});
