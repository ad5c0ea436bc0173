import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { makeImage, makeMultiArch, writeOciLayout } from '../helpers/images.js';
import { bytesOf, errorOf } from '../helpers/oci-http.js';
import { startRegistry } from '../helpers/registry.js';
import { scratch, startDistribution } from '../helpers/clients.js';
import { needTools } from '../helpers/tools.js';
import { sluice, sluiceCopy } from '../helpers/sluice-cli.js';
import { digestOf } from '../../src/oci/digest.js';

test('--platform linux/arm64 into a registry that accepts partial indexes keeps the index digest', async () => {
  const s = await scratch();
  const reg = await startRegistry({ validation: { manifests: { indexes: { platforms: 'none' } } } });
  try {
    const idx = await makeMultiArch('partial');
    await writeOciLayout(join(s.dir, 'src'), [{ tag: 'v1', image: idx }]);
    const sum = await sluiceCopy(`oci:${s.dir}/src:v1`, `docker://${reg.host}/mirror/app:v1`, [
      '--platform',
      'linux/arm64',
    ]);
    assert.equal(sum.digest, idx.digest);
    assert.deepEqual(sum.warnings, []);
    const arm = idx.images.find((i) => i.platform.architecture === 'arm64')!;
    const amd = idx.images.find((i) => i.platform.architecture === 'amd64')!;
    assert.equal(sum.bytesSent, arm.config.bytes.length + arm.layers.reduce((a, l) => a + l.bytes.length, 0));

    const top = await fetch(`${reg.url}/v2/mirror/app/manifests/v1`, { headers: { accept: idx.mediaType } });
    assert.equal(top.headers.get('docker-content-digest'), idx.digest);
    assert.deepEqual(await bytesOf(top), idx.manifest);
    // arm64 pulls: its manifest and every blob.
    const m = await fetch(`${reg.url}/v2/mirror/app/manifests/${arm.digest}`, { headers: { accept: arm.mediaType } });
    assert.equal(m.status, 200);
    assert.deepEqual(await bytesOf(m), arm.manifest);
    for (const b of [arm.config, ...arm.layers]) {
      const r = await fetch(`${reg.url}/v2/mirror/app/blobs/${b.descriptor.digest}`);
      assert.equal(r.status, 200);
      assert.deepEqual(await bytesOf(r), b.bytes);
    }
    // amd64 was not copied: the registry says so plainly.
    const miss = await fetch(`${reg.url}/v2/mirror/app/manifests/${amd.digest}`, {
      headers: { accept: amd.mediaType },
    });
    assert.equal(miss.status, 404);
    const err = await errorOf(miss);
    assert.equal(err.code, 'MANIFEST_UNKNOWN');
    assert.match(err.message, /linux\/amd64 of index sha256:[0-9a-f]{64} is not stored in this registry/);
    const layer = await fetch(`${reg.url}/v2/mirror/app/blobs/${amd.layers[0]!.descriptor.digest}`);
    assert.equal(layer.status, 404);
  } finally {
    await reg.close();
    await s.cleanup();
  }
});

test('a partial index into a registry that refuses it fails with a hint; --rewrite-index writes a smaller index', async (t) => {
  const s = await scratch();
  const reg = await startRegistry();
  const targets: { host: string; url: string; stop?: () => Promise<void> }[] = [reg];
  try {
    if (!needTools(t, 'docker-registry')) return;
    targets.push(await startDistribution(join(s.dir, 'dist')));
    const idx = await makeMultiArch('refused');
    await writeOciLayout(join(s.dir, 'src'), [{ tag: 'v1', image: idx }]);
    for (const target of targets) {
      const r = await sluice([
        'copy',
        '--platform',
        'linux/arm64',
        `oci:${s.dir}/src:v1`,
        `docker://${target.host}/app:v1`,
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /MANIFEST_BLOB_UNKNOWN/);
      assert.match(r.stderr, /--rewrite-index/);
      assert.equal(
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('sluice:')).length,
        1,
      );

      const sum = await sluiceCopy(`oci:${s.dir}/src:v1`, `docker://${target.host}/app:v1`, [
        '--platform',
        'linux/arm64',
        '--rewrite-index',
      ]);
      assert.notEqual(sum.digest, idx.digest);
      assert.match(sum.warnings.join('\n'), /new index with 1 of 3 manifests/);
      const got = await fetch(`${target.url}/v2/app/manifests/v1`, { headers: { accept: idx.mediaType } });
      const bytes = await bytesOf(got);
      assert.equal(digestOf(bytes), sum.digest);
      const doc = JSON.parse(bytes.toString('utf8')) as { manifests: { platform: { architecture: string } }[] };
      assert.deepEqual(
        doc.manifests.map((m) => m.platform.architecture),
        ['arm64'],
      );
    }
  } finally {
    for (const x of targets) await (x.stop ? x.stop() : reg.close());
    await s.cleanup();
  }
});

test('an unknown platform and a digest-changing rewrite under --preserve-digests are refused', async () => {
  const s = await scratch();
  const reg = await startRegistry();
  try {
    const idx = await makeMultiArch('bad');
    await writeOciLayout(join(s.dir, 'src'), [{ tag: 'v1', image: idx }]);
    const r = await sluice([
      'copy',
      '--platform',
      'linux/riscv64',
      `oci:${s.dir}/src:v1`,
      `docker://${reg.host}/app:v1`,
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no linux\/riscv64 image \(it has: linux\/amd64, linux\/arm64\/v8, linux\/s390x\)/);
    const p = await sluice([
      'copy',
      '--platform',
      'linux/arm64',
      '--rewrite-index',
      '--preserve-digests',
      `oci:${s.dir}/src:v1`,
      `docker://${reg.host}/app:v1`,
    ]);
    assert.equal(p.code, 1);
    assert.match(p.stderr, /preserve-digests/);
    const tags = await fetch(`${reg.url}/v2/app/manifests/v1`);
    assert.equal(tags.status, 404);
  } finally {
    await reg.close();
    await s.cleanup();
  }
});

test('--platform on a single-platform image: another platform is an error naming what the image is; its own platform copies', async () => {
  const s = await scratch();
  const reg = await startRegistry();
  try {
    const img = await makeImage({ label: 'amd64-only' });
    await writeOciLayout(join(s.dir, 'src'), [{ tag: 'v1', image: img }]);
    const r = await sluice([
      'copy',
      '--platform',
      'linux/arm64',
      `oci:${s.dir}/src:v1`,
      `docker://${reg.host}/single:v1`,
    ]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^sluice: the image is linux\/amd64 only; --platform linux\/arm64 matches nothing/);
    assert.equal((await fetch(`${reg.url}/v2/single/manifests/v1`)).status, 404, 'nothing was written');

    const both = await sluice([
      'copy',
      '--platform',
      'linux/amd64',
      '--platform',
      'linux/s390x',
      `oci:${s.dir}/src:v1`,
      `docker://${reg.host}/single:v1`,
    ]);
    assert.equal(both.code, 1);
    assert.match(both.stderr, /--platform linux\/s390x matches nothing/);

    const ok = await sluiceCopy(`oci:${s.dir}/src:v1`, `docker://${reg.host}/single:v1`, ['--platform', 'linux/amd64']);
    assert.equal(ok.digest, img.digest);
    assert.deepEqual(ok.warnings, []);
  } finally {
    await reg.close();
    await s.cleanup();
  }
});
