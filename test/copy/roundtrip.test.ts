import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { makeImage, makeMultiArch, writeOciLayout, type TestIndex } from '../helpers/images.js';
import { assertIntact } from '../helpers/oci-http.js';
import { startRegistry } from '../helpers/registry.js';
import { inspectRaw, layoutBlob, layoutDigest, scratch, skopeoCopy, startDistribution } from '../helpers/clients.js';
import { needTools } from '../helpers/tools.js';
import { sluice, sluiceCopy } from '../helpers/sluice-cli.js';

function blobsOf(idx: TestIndex) {
  return idx.images.flatMap((i) => [i.config, ...i.layers]);
}

function totalBytes(idx: TestIndex): number {
  return blobsOf(idx).reduce((a, b) => a + b.bytes.length, 0);
}

/** Asserts that an OCI layout holds the index under `tag` and every blob byte for byte. */
async function assertLayout(dir: string, tag: string, idx: TestIndex): Promise<void> {
  assert.equal(await layoutDigest(dir, tag), idx.digest);
  assert.deepEqual(await layoutBlob(dir, idx.digest), idx.manifest);
  for (const img of idx.images) {
    assert.deepEqual(await layoutBlob(dir, img.digest), img.manifest);
    for (const b of [img.config, ...img.layers]) assert.deepEqual(await layoutBlob(dir, b.descriptor.digest), b.bytes);
  }
}

test('oci → Sluice → Distribution → oci-archive → oci keeps every digest and byte', async (t) => {
  if (!needTools(t, 'docker-registry')) return;
  const s = await scratch();
  const reg = await startRegistry();
  const dist = await startDistribution(join(s.dir, 'dist'));
  try {
    const idx = await makeMultiArch('roundtrip');
    await writeOciLayout(join(s.dir, 'src'), [{ tag: 'v1', image: idx }]);

    const a = await sluiceCopy(`oci:${s.dir}/src:v1`, `docker://${reg.host}/team/app:v1`, ['--all']);
    assert.equal(a.digest, idx.digest);
    assert.equal(a.sourceDigest, idx.digest);
    assert.equal(a.bytesSent, totalBytes(idx));
    assert.equal(a.bytesSkipped, 0);
    assert.equal(a.manifests.length, 4);
    await assertIntact(reg.url, 'team/app', 'v1', idx);

    // Again: everything is there, nothing is sent.
    const again = await sluiceCopy(`oci:${s.dir}/src:v1`, `docker://${reg.host}/team/app:v1`, ['--all']);
    assert.equal(again.bytesSent, 0);
    assert.equal(again.bytesSkipped, totalBytes(idx));

    // Same registry, other repository: blobs are mounted, not uploaded.
    const m = await sluiceCopy(`docker://${reg.host}/team/app:v1`, `docker://${reg.host}/other/app:v1`, ['--all']);
    assert.equal(m.bytesSent, 0);
    assert.equal(m.bytesMounted, totalBytes(idx));
    await assertIntact(reg.url, 'other/app', 'v1', idx);

    const b = await sluiceCopy(`docker://${reg.host}/team/app:v1`, `docker://${dist.host}/mirror/app:v1`, ['--all']);
    assert.equal(b.digest, idx.digest);
    await assertIntact(dist.url, 'mirror/app', 'v1', idx);

    const archive = join(s.dir, 'app.tar');
    const c = await sluiceCopy(`docker://${dist.host}/mirror/app:v1`, `oci-archive:${archive}:v1`, ['--all']);
    assert.equal(c.digest, idx.digest);
    const d = await sluiceCopy(`oci-archive:${archive}:v1`, `oci:${s.dir}/out:back`, ['--all']);
    assert.equal(d.digest, idx.digest);
    await assertLayout(join(s.dir, 'out'), 'back', idx);

    // inspect and tags read what was written.
    const ins = await sluice(['inspect', `docker://${dist.host}/mirror/app:v1`]);
    assert.equal(ins.code, 0, ins.stderr);
    const doc = JSON.parse(ins.stdout) as { Digest: string; Platforms: string[] };
    assert.equal(doc.Digest, idx.digest);
    assert.deepEqual(doc.Platforms, ['linux/amd64', 'linux/arm64/v8', 'linux/s390x']);
    const raw = await sluice(['inspect', '--raw', `oci:${s.dir}/out:back`]);
    assert.equal(raw.stdout, idx.manifest.toString('utf8'));
    const tags = await sluice(['tags', `docker://${reg.host}/team/app`]);
    assert.equal(tags.stdout, 'v1\n');
  } finally {
    await dist.stop();
    await reg.close();
    await s.cleanup();
  }
});

test("without --all a copy takes this machine's platform, written as the image itself", async () => {
  const s = await scratch();
  const reg = await startRegistry();
  try {
    const idx = await makeMultiArch('default');
    await writeOciLayout(join(s.dir, 'src'), [{ tag: 'v1', image: idx }]);
    const sum = await sluiceCopy(`oci:${s.dir}/src:v1`, `docker://${reg.host}/app:v1`, [], {});
    const host = process.arch === 'arm64' ? 'arm64' : process.arch === 's390x' ? 's390x' : 'amd64';
    const img = idx.images.find((i) => i.platform.architecture === host)!;
    assert.equal(sum.digest, img.digest);
    await assertIntact(reg.url, 'app', 'v1', img);
  } finally {
    await reg.close();
    await s.cleanup();
  }
});

test('chunked uploads (--dest-chunk-size) land intact in Sluice and in Distribution', async (t) => {
  if (!needTools(t, 'docker-registry')) return;
  const s = await scratch();
  const reg = await startRegistry();
  const dist = await startDistribution(join(s.dir, 'dist'));
  try {
    // Random bytes do not compress: the gzip layer stays ~300 kB, several 64 kB chunks.
    const img = await makeImage({ layers: [{ 'big.bin': randomBytes(300_000) }, { 'small.txt': 'x' }] });
    await writeOciLayout(join(s.dir, 'src'), [{ tag: 'v1', image: img }]);
    for (const target of [reg, dist]) {
      const sum = await sluiceCopy(`oci:${s.dir}/src:v1`, `docker://${target.host}/chunked:v1`, [
        '--dest-chunk-size',
        '65536',
      ]);
      assert.equal(sum.digest, img.digest);
      await assertIntact(target.url, 'chunked', 'v1', img);
    }
  } finally {
    await dist.stop();
    await reg.close();
    await s.cleanup();
  }
});

test('skopeo reads what Sluice wrote (registry, oci-archive, oci)', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const s = await scratch();
  const reg = await startRegistry();
  try {
    const idx = await makeMultiArch('sluice-writes');
    await writeOciLayout(join(s.dir, 'src'), [{ tag: 'v1', image: idx }]);
    await sluiceCopy(`oci:${s.dir}/src:v1`, `docker://${reg.host}/app:v1`, ['--all']);
    assert.deepEqual(await inspectRaw(`docker://${reg.host}/app:v1`), idx.manifest);
    await skopeoCopy(`docker://${reg.host}/app:v1`, `oci:${s.dir}/sk1:v1`, ['--all']);
    await assertLayout(join(s.dir, 'sk1'), 'v1', idx);

    await sluiceCopy(`docker://${reg.host}/app:v1`, `oci-archive:${s.dir}/a.tar:v1`, ['--all']);
    await skopeoCopy(`oci-archive:${s.dir}/a.tar:v1`, `oci:${s.dir}/sk2:v1`, ['--all']);
    await assertLayout(join(s.dir, 'sk2'), 'v1', idx);

    await sluiceCopy(`docker://${reg.host}/app:v1`, `oci:${s.dir}/sl:v1`, ['--all']);
    await skopeoCopy(`oci:${s.dir}/sl:v1`, `oci:${s.dir}/sk3:v1`, ['--all']);
    await assertLayout(join(s.dir, 'sk3'), 'v1', idx);
  } finally {
    await reg.close();
    await s.cleanup();
  }
});

test('Sluice reads what skopeo wrote (Distribution, oci-archive, oci)', async (t) => {
  if (!needTools(t, 'skopeo', 'docker-registry')) return;
  const s = await scratch();
  const reg = await startRegistry();
  const dist = await startDistribution(join(s.dir, 'dist'));
  try {
    const idx = await makeMultiArch('skopeo-writes');
    await writeOciLayout(join(s.dir, 'src'), [{ tag: 'v1', image: idx }]);
    await skopeoCopy(`oci:${s.dir}/src:v1`, `docker://${dist.host}/sk/app:v1`, ['--all']);
    const a = await sluiceCopy(`docker://${dist.host}/sk/app:v1`, `oci:${s.dir}/out1:v1`, ['--all']);
    assert.equal(a.digest, idx.digest);
    await assertLayout(join(s.dir, 'out1'), 'v1', idx);

    await skopeoCopy(`oci:${s.dir}/src:v1`, `oci-archive:${s.dir}/sk.tar:v1`, ['--all']);
    const b = await sluiceCopy(`oci-archive:${s.dir}/sk.tar:v1`, `docker://${reg.host}/from/archive:v1`, ['--all']);
    assert.equal(b.digest, idx.digest);
    await assertIntact(reg.url, 'from/archive', 'v1', idx);

    await skopeoCopy(`oci:${s.dir}/src:v1`, `oci:${s.dir}/sk:v1`, ['--all']);
    const c = await sluiceCopy(`oci:${s.dir}/sk:v1`, `docker://${reg.host}/from/layout:v1`, ['--all']);
    assert.equal(c.digest, idx.digest);
    await assertIntact(reg.url, 'from/layout', 'v1', idx);
  } finally {
    await dist.stop();
    await reg.close();
    await s.cleanup();
  }
});
