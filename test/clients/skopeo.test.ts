import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { makeImage, makeMultiArch, writeOciLayout } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';
import { needTools } from '../helpers/tools.js';
import { inspectRaw, layoutBlob, layoutDigest, scratch, skopeoCopy } from '../helpers/clients.js';

test('skopeo copies a single-arch image from an OCI layout into Sluice and back out, digests intact', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const s = await scratch();
  const reg = await startRegistry();
  try {
    const img = await makeImage({ layers: [{ 'a.txt': 'one\n' }, { 'b/c.txt': 'two\n' }], label: 'single' });
    const src = join(s.dir, 'src');
    await writeOciLayout(src, [{ tag: 'v1', image: img }]);

    await skopeoCopy(`oci:${src}:v1`, `docker://${reg.host}/team/single:v1`);
    const raw = await inspectRaw(`docker://${reg.host}/team/single:v1`);
    assert.deepEqual(raw, img.manifest, 'the registry serves the pushed manifest byte for byte');
    assert.equal(digestOf(raw), img.digest);

    const byDigest = await inspectRaw(`docker://${reg.host}/team/single@${img.digest}`);
    assert.deepEqual(byDigest, img.manifest);

    const out = join(s.dir, 'out');
    await skopeoCopy(`docker://${reg.host}/team/single:v1`, `oci:${out}:copied`);
    assert.equal(await layoutDigest(out, 'copied'), img.digest);
    assert.deepEqual(await layoutBlob(out, img.digest), img.manifest);
    assert.deepEqual(await layoutBlob(out, img.config.descriptor.digest), img.config.bytes);
    for (const l of img.layers) assert.deepEqual(await layoutBlob(out, l.descriptor.digest), l.bytes);

    const tags = await (await fetch(`${reg.url}/v2/team/single/tags/list`)).json();
    assert.deepEqual(tags, { name: 'team/single', tags: ['v1'] });
  } finally {
    await reg.close();
    await s.cleanup();
  }
});

test('skopeo copy --all moves a multi-arch index in and out with every digest kept', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const s = await scratch();
  const reg = await startRegistry();
  try {
    const idx = await makeMultiArch('skopeo-all');
    const src = join(s.dir, 'src');
    await writeOciLayout(src, [{ tag: 'multi', image: idx }]);

    await skopeoCopy(`oci:${src}:multi`, `docker://${reg.host}/team/multi:latest`, ['--all']);
    assert.deepEqual(await inspectRaw(`docker://${reg.host}/team/multi:latest`), idx.manifest);
    for (const img of idx.images) {
      assert.deepEqual(await inspectRaw(`docker://${reg.host}/team/multi@${img.digest}`), img.manifest);
    }

    const out = join(s.dir, 'out');
    await skopeoCopy(`docker://${reg.host}/team/multi:latest`, `oci:${out}:back`, ['--all']);
    assert.equal(await layoutDigest(out, 'back'), idx.digest);
    assert.deepEqual(await layoutBlob(out, idx.digest), idx.manifest);
    for (const img of idx.images) {
      assert.deepEqual(await layoutBlob(out, img.digest), img.manifest);
      assert.deepEqual(await layoutBlob(out, img.config.descriptor.digest), img.config.bytes);
      for (const l of img.layers) assert.deepEqual(await layoutBlob(out, l.descriptor.digest), l.bytes);
    }

    // Without --all skopeo picks one platform by digest out of the stored index.
    const one = join(s.dir, 'one');
    await skopeoCopy(`docker://${reg.host}/team/multi:latest`, `oci:${one}:arm`, [
      '--override-arch',
      'arm64',
      '--override-variant',
      'v8',
    ]);
    assert.equal(await layoutDigest(one, 'arm'), idx.images[1]!.digest);
  } finally {
    await reg.close();
    await s.cleanup();
  }
});

test('skopeo copy --format v2s2 stores a Docker schema 2 image that copies on unchanged', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const s = await scratch();
  const reg = await startRegistry();
  try {
    const img = await makeImage({ label: 'v2s2' });
    const src = join(s.dir, 'src');
    await writeOciLayout(src, [{ tag: 'v1', image: img }]);
    const digestFile = join(s.dir, 'digest');
    await skopeoCopy(`oci:${src}:v1`, `docker://${reg.host}/team/docker:v1`, [
      '--format',
      'v2s2',
      '--digestfile',
      digestFile,
    ]);

    const raw = await inspectRaw(`docker://${reg.host}/team/docker:v1`);
    const pushed = (await readFile(digestFile, 'utf8')).trim();
    assert.equal(digestOf(raw), pushed, 'served bytes hash to the digest skopeo pushed');
    const m = JSON.parse(raw.toString('utf8'));
    assert.equal(m.mediaType, MediaType.DockerManifest);
    assert.equal(m.config.mediaType, MediaType.DockerConfig);
    assert.equal(m.config.digest, img.config.descriptor.digest, 'the config blob is carried over unchanged');
    assert.deepEqual(
      m.layers.map((l: { digest: string; mediaType: string }) => [l.digest, l.mediaType]),
      img.layers.map((l) => [l.descriptor.digest, MediaType.DockerLayerGzip]),
    );
    const head = await fetch(`${reg.url}/v2/team/docker/manifests/v1`, {
      method: 'HEAD',
      headers: { accept: MediaType.DockerManifest },
    });
    assert.equal(head.headers.get('content-type'), MediaType.DockerManifest);
    assert.equal(head.headers.get('docker-content-digest'), pushed);

    // Registry to registry and out to a dir: the Docker manifest keeps its bytes and digest.
    await skopeoCopy(`docker://${reg.host}/team/docker:v1`, `docker://${reg.host}/other/docker:v1`);
    assert.deepEqual(await inspectRaw(`docker://${reg.host}/other/docker:v1`), raw);
    const dir = join(s.dir, 'dir');
    await skopeoCopy(`docker://${reg.host}/team/docker:v1`, `dir:${dir}`);
    assert.deepEqual(await readFile(join(dir, 'manifest.json')), raw);
    assert.deepEqual(
      await readFile(join(dir, img.layers[0]!.descriptor.digest.slice('sha256:'.length))),
      img.layers[0]!.bytes,
    );
  } finally {
    await reg.close();
    await s.cleanup();
  }
});
