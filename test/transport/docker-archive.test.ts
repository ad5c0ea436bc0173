import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { copyImage, CopyError } from '../../src/copy/copy.js';
import { digestOf } from '../../src/oci/digest.js';
import { parseManifest, type ImageManifest } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { indexTar } from '../../src/transport/tar-index.js';
import { openDestination, openSource } from '../../src/transport/index.js';
import type { ImageSource } from '../../src/transport/transport.js';
import { startDockerd, hasDocker } from '../helpers/dockerd.js';
import { makeImage, makeMultiArch, makeTar, writeOciLayout, type TestImage } from '../helpers/images.js';
import { needTools, runOk } from '../helpers/tools.js';
import { sluice } from '../helpers/sluice-cli.js';

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

async function scratch(): Promise<{ dir: string; done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-darchive-'));
  return { dir, done: () => rm(dir, { recursive: true, force: true }) };
}

/** Writes a test image as a Docker archive through the copy engine (oci: → docker-archive:). */
async function writeArchive(dir: string, image: TestImage, ref: string): Promise<string> {
  const layout = join(dir, `layout-${image.digest.slice(7, 19)}`);
  await writeOciLayout(layout, [{ tag: 'v1', image }]);
  const file = join(dir, `${image.digest.slice(7, 19)}.tar`);
  const src = await openSource(`oci:${layout}:v1`);
  const dst = await openDestination(`docker-archive:${file}${ref ? `:${ref}` : ''}`);
  try {
    const summary = await copyImage(src, dst);
    assert.ok(
      summary.warnings.some((w) => /uncompressed/.test(w)),
      `the copy warns that the digest changes: ${summary.warnings.join('; ')}`,
    );
  } finally {
    await src.close();
    await dst.close();
  }
  return file;
}

/** Reads every blob of the source's manifest and checks each against its descriptor. */
async function checkBlobs(src: ImageSource, m: ImageManifest): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const d of [m.config, ...m.layers]) {
    const bytes = await readAll(await src.getBlob(d));
    assert.equal(bytes.length, d.size, `size of ${d.digest}`);
    assert.equal(digestOf(bytes), d.digest, `content of ${d.digest}`);
    out.set(d.digest, bytes);
  }
  return out;
}

test('the tar index gives byte ranges of members, long (pax) names and links included', async () => {
  const s = await scratch();
  try {
    const long = `${'d'.repeat(120)}/layer.tar`;
    const tarBytes = await makeTar({ 'manifest.json': '[]', [long]: Buffer.alloc(70_000, 7), 'small.txt': 'hi' });
    const file = join(s.dir, 'x.tar');
    await writeFile(file, tarBytes);
    const members = await indexTar(file);
    const byName = new Map(members.map((m) => [m.name, m]));
    assert.deepEqual([...byName.keys()].sort(), [long, 'manifest.json', 'small.txt'].sort());
    const m = byName.get(long)!;
    assert.equal(m.size, 70_000);
    assert.deepEqual(tarBytes.subarray(m.offset, m.offset + m.size), Buffer.alloc(70_000, 7));
    const t = byName.get('small.txt')!;
    assert.equal(tarBytes.subarray(t.offset, t.offset + t.size).toString(), 'hi');
  } finally {
    await s.done();
  }
});

test('an archive Sluice writes reads back with the same config and uncompressed layers named by their diff_ids', async () => {
  const s = await scratch();
  try {
    const image = await makeImage({
      layers: [{ 'a.txt': 'first layer\n' }, { 'b/c.txt': 'second layer\n' }],
      format: 'docker',
      label: 'rt',
    });
    const file = await writeArchive(s.dir, image, 'example.com/team/app:1.0');
    const src = await openSource(`docker-archive:${file}`);
    try {
      assert.match(src.digestChange ?? '', /new/, 'a synthesized manifest says that its digest differs');
      const raw = await src.getManifest();
      const m = parseManifest(raw.bytes) as ImageManifest;
      assert.equal(raw.mediaType, MediaType.DockerManifest);
      assert.equal(m.config.digest, image.config.descriptor.digest, 'config digest (image ID) is kept');
      const diffIds = (JSON.parse(image.config.bytes.toString()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
      assert.deepEqual(
        m.layers.map((l) => l.digest),
        diffIds,
      );
      assert.deepEqual(
        m.layers.map((l) => l.mediaType),
        [MediaType.DockerLayer, MediaType.DockerLayer],
      );
      assert.notEqual(raw.digest, image.digest);
      const blobs = await checkBlobs(src, m);
      assert.deepEqual(blobs.get(m.config.digest), image.config.bytes, 'config bytes identical');
      assert.deepEqual(
        blobs.get(m.layers[0]!.digest),
        gunzipSync(image.layers[0]!.bytes),
        'layer is the gunzipped original',
      );
    } finally {
      await src.close();
    }
    // The same archive by name, and a name it does not hold.
    const named = await openSource(`docker-archive:${file}:example.com/team/app:1.0`);
    await named.close();
    await assert.rejects(
      openSource(`docker-archive:${file}:example.com/team/app:2.0`),
      /has no image example.com\/team\/app:2.0/,
    );
    const members = new Map((await indexTar(file)).map((x) => [x.name, x]));
    const saved = JSON.parse(
      (await readFile(file))
        .subarray(
          members.get('manifest.json')!.offset,
          members.get('manifest.json')!.offset + members.get('manifest.json')!.size,
        )
        .toString(),
    );
    assert.deepEqual(saved[0].RepoTags, ['example.com/team/app:1.0']);
  } finally {
    await s.done();
  }
});

test('sluice copy to a Docker archive reports the image ID the archive holds, not the source manifest digest', async () => {
  const s = await scratch();
  try {
    const image = await makeImage({ label: 'report' });
    const layout = join(s.dir, 'layout');
    await writeOciLayout(layout, [{ tag: 'v1', image }]);
    const out = await sluice(['copy', `oci:${layout}:v1`, `docker-archive:${join(s.dir, 'out.tar')}:x/app:v1`]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, new RegExp(`\\(image ID ${image.config.descriptor.digest}\\)`));
    assert.ok(!out.stderr.includes(`(${image.digest})`), out.stderr);
    const json = await sluice([
      'copy',
      '--json',
      `oci:${layout}:v1`,
      `docker-archive:${join(s.dir, 'out2.tar')}:x/app:v1`,
    ]);
    assert.equal((JSON.parse(json.stdout) as { imageId: string }).imageId, image.config.descriptor.digest);
  } finally {
    await s.done();
  }
});

test('--preserve-digests refuses to write a Docker archive, and says why', async () => {
  const s = await scratch();
  try {
    const image = await makeImage({ label: 'preserve' });
    const layout = join(s.dir, 'layout');
    await writeOciLayout(layout, [{ tag: 'v1', image }]);
    const src = await openSource(`oci:${layout}:v1`);
    const dst = await openDestination(`docker-archive:${join(s.dir, 'out.tar')}:x:y`);
    try {
      await assert.rejects(
        copyImage(src, dst, { preserveDigests: true }),
        (e: unknown) => e instanceof CopyError && /uncompressed/.test((e as Error).message),
      );
    } finally {
      await src.close();
      await dst.close();
    }
  } finally {
    await s.done();
  }
});

test('the Docker 25+ archive layout (OCI layout inside) serves its original manifest, digest kept', async () => {
  const s = await scratch();
  try {
    const layerTar = await makeTar({ 'etc/hello': 'hello from a docker 25 archive\n' });
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
    const archive = await makeTar({
      'oci-layout': JSON.stringify({ imageLayoutVersion: '1.0.0' }),
      'index.json': JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [
          {
            mediaType: MediaType.OciManifest,
            digest: manifestDigest,
            size: manifest.length,
            annotations: {
              'io.containerd.image.name': 'docker.io/library/new:25',
              'org.opencontainers.image.ref.name': '25',
            },
          },
        ],
      }),
      'manifest.json': JSON.stringify([
        { Config: `blobs/sha256/${hex(configDigest)}`, RepoTags: ['new:25'], Layers: [`blobs/sha256/${hex(diffId)}`] },
      ]),
      [`blobs/sha256/${hex(configDigest)}`]: config,
      [`blobs/sha256/${hex(diffId)}`]: layerTar,
      [`blobs/sha256/${hex(manifestDigest)}`]: manifest,
    });
    const file = join(s.dir, 'new.tar');
    await writeFile(file, archive);
    const src = await openSource(`docker-archive:${file}:new:25`);
    try {
      assert.equal(src.digestChange, undefined);
      const raw = await src.getManifest();
      assert.equal(raw.digest, manifestDigest);
      assert.deepEqual(raw.bytes, manifest, 'manifest bytes exactly as in the archive');
      const blobs = await checkBlobs(src, parseManifest(raw.bytes) as ImageManifest);
      assert.deepEqual(blobs.get(diffId), layerTar);
    } finally {
      await src.close();
    }
  } finally {
    await s.done();
  }
});

test('skopeo reads an archive Sluice writes and describes it with the same manifest', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const s = await scratch();
  try {
    const image = await makeImage({ layers: [{ 'x.txt': 'skopeo sees this\n' }], label: 'skopeo' });
    const file = await writeArchive(s.dir, image, 'skopeo/check:1');
    const sk = await runOk('skopeo', ['inspect', '--raw', `docker-archive:${file}`]);
    const skManifest = parseManifest(Buffer.from(sk.stdout)) as ImageManifest;
    const src = await openSource(`docker-archive:${file}`);
    try {
      const raw = await src.getManifest();
      const mine = parseManifest(raw.bytes) as ImageManifest;
      assert.equal(skManifest.config.digest, image.config.descriptor.digest);
      assert.deepEqual(
        skManifest.layers.map((l) => [l.digest, l.size]),
        mine.layers.map((l) => [l.digest, l.size]),
      );
      // skopeo 1.9 labels the archive's uncompressed layers ...tar.gzip; Sluice says what they are. Apart
      // from that media type the two synthesized manifests are the same bytes.
      const skBytes = sk.stdout.trimEnd().replaceAll(`"${MediaType.DockerLayerGzip}"`, `"${MediaType.DockerLayer}"`);
      assert.equal(digestOf(Buffer.from(skBytes)), raw.digest, 'same synthesized manifest bytes');
    } finally {
      await src.close();
    }
  } finally {
    await s.done();
  }
});

test('docker load accepts an archive Sluice writes; Sluice reads what docker save writes', async (t) => {
  if (!hasDocker()) {
    needTools(t, 'dockerd', 'docker');
    return;
  }
  const s = await scratch();
  const daemon = await startDockerd();
  try {
    const image = await makeImage({ layers: [{ 'one.txt': 'one\n' }, { 'two.txt': 'two\n' }], label: 'load' });
    const file = await writeArchive(s.dir, image, 'sluice/loadme:v1');
    const load = await daemon.docker(['load', '-i', file]);
    assert.match(load.stdout, /Loaded image: sluice\/loadme:v1/);
    const id = (await daemon.docker(['image', 'inspect', '--format', '{{.Id}}', 'sluice/loadme:v1'])).stdout.trim();
    assert.equal(id, image.config.descriptor.digest, 'the image ID is the config digest Sluice wrote');

    const saved = join(s.dir, 'saved.tar');
    await daemon.docker(['save', '-o', saved, 'sluice/loadme:v1']);
    const src = await openSource(`docker-archive:${saved}:sluice/loadme:v1`);
    try {
      const m = parseManifest((await src.getManifest()).bytes) as ImageManifest;
      assert.equal(m.config.digest, image.config.descriptor.digest, 'config digest unchanged through docker');
      const blobs = await checkBlobs(src, m);
      assert.deepEqual(blobs.get(m.config.digest), image.config.bytes, 'image config identical');
      const diffIds = (JSON.parse(image.config.bytes.toString()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
      assert.deepEqual(
        m.layers.map((l) => l.digest),
        diffIds,
      );
      for (const [i, l] of m.layers.entries()) {
        assert.equal(createHash('sha256').update(gunzipSync(image.layers[i]!.bytes)).digest('hex'), l.digest.slice(7));
      }
    } finally {
      await src.close();
    }
  } finally {
    await daemon.stop();
    await s.done();
  }
});

test('docker save of two images sharing a layer (linked layer.tar) is read image by image, by name and by @INDEX', async (t) => {
  if (!hasDocker()) {
    needTools(t, 'dockerd', 'docker');
    return;
  }
  const s = await scratch();
  const daemon = await startDockerd();
  try {
    const one = await makeImage({
      layers: [{ 'a.txt': 'shared\n' }, { 'b.txt': 'only one\n' }, { 'a.txt': 'shared\n' }],
      label: 'one',
    });
    const two = await makeImage({ layers: [{ 'a.txt': 'shared\n' }, { 'c.txt': 'only two\n' }], label: 'two' });
    await daemon.docker(['load', '-i', await writeArchive(s.dir, one, 'pair/one:1')]);
    await daemon.docker(['load', '-i', await writeArchive(s.dir, two, 'pair/two:2')]);
    const saved = join(s.dir, 'pair.tar');
    await daemon.docker(['save', '-o', saved, 'pair/one:1', 'pair/two:2']);
    assert.ok(
      (await indexTar(saved)).some((m) => m.type === '2' && m.name.endsWith('/layer.tar')),
      'docker save linked a repeated layer',
    );

    await assert.rejects(openSource(`docker-archive:${saved}`), /holds 2 images; name one/);
    for (const [ref, image] of [
      ['pair/one:1', one],
      ['docker.io/pair/two:2', two],
    ] as const) {
      const src = await openSource(`docker-archive:${saved}:${ref}`);
      try {
        const m = parseManifest((await src.getManifest()).bytes) as ImageManifest;
        assert.equal(m.config.digest, image.config.descriptor.digest, ref);
        const diffIds = (JSON.parse(image.config.bytes.toString()) as { rootfs: { diff_ids: string[] } }).rootfs
          .diff_ids;
        assert.deepEqual(
          m.layers.map((l) => l.digest),
          diffIds,
          ref,
        );
        await checkBlobs(src, m);
      } finally {
        await src.close();
      }
    }
    const configs = new Set<string>();
    for (const i of [0, 1]) {
      const src = await openSource(`docker-archive:${saved}:@${i}`);
      configs.add((parseManifest((await src.getManifest()).bytes) as ImageManifest).config.digest);
      await src.close();
    }
    assert.deepEqual(configs, new Set([one.config.descriptor.digest, two.config.descriptor.digest]));
    await assert.rejects(openSource(`docker-archive:${saved}:@2`), /no image @2/);
  } finally {
    await daemon.stop();
    await s.done();
  }
});

test('podman loads an archive Sluice writes and Sluice reads what podman saves', async (t) => {
  if (!needTools(t, 'podman')) return;
  const s = await scratch();
  try {
    const image = await makeImage({ layers: [{ 'p.txt': 'podman round trip\n' }], label: 'podman' });
    const file = await writeArchive(s.dir, image, 'pod/trip:v1');
    const P = ['--storage-driver', 'vfs', '--root', join(s.dir, 'root'), '--runroot', join(s.dir, 'runroot')];
    await runOk('podman', [...P, 'load', '-i', file]);
    const id = (
      await runOk('podman', [...P, 'image', 'inspect', '--format', '{{.Id}}', 'localhost/pod/trip:v1'])
    ).stdout.trim();
    assert.equal(`sha256:${id}`, image.config.descriptor.digest);
    const saved = join(s.dir, 'podman-saved.tar');
    await runOk('podman', [...P, 'save', '--format', 'docker-archive', '-o', saved, 'localhost/pod/trip:v1']);
    const src = await openSource(`docker-archive:${saved}`);
    try {
      const m = parseManifest((await src.getManifest()).bytes) as ImageManifest;
      assert.equal(m.config.digest, image.config.descriptor.digest);
      const blobs = await checkBlobs(src, m);
      assert.deepEqual(blobs.get(m.layers[0]!.digest), gunzipSync(image.layers[0]!.bytes));
    } finally {
      await src.close();
    }
  } finally {
    await s.done();
  }
});

test('an index copied into a Docker archive becomes the one chosen platform', async () => {
  const s = await scratch();
  try {
    const index = await makeMultiArch('pick');
    const layout = join(s.dir, 'layout');
    await writeOciLayout(layout, [{ tag: 'multi', image: index }]);
    for (const [platform, arch] of [
      [undefined, 'amd64'],
      [{ os: 'linux', architecture: 'arm64' }, 'arm64'],
    ] as const) {
      const file = join(s.dir, `${arch}.tar`);
      const src = await openSource(`oci:${layout}:multi`);
      const dst = await openDestination(`docker-archive:${file}:multi/pick:${arch}`);
      try {
        await copyImage(
          src,
          dst,
          platform ? { platforms: [platform] } : { defaultPlatform: { os: 'linux', architecture: 'amd64' } },
        );
      } finally {
        await src.close();
        await dst.close();
      }
      const back = await openSource(`docker-archive:${file}`);
      try {
        const m = parseManifest((await back.getManifest()).bytes) as ImageManifest;
        const want = index.images.find((i) => i.platform.architecture === arch)!;
        assert.equal(m.config.digest, want.config.descriptor.digest, arch);
      } finally {
        await back.close();
      }
    }
  } finally {
    await s.done();
  }
});
