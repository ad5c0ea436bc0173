import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { makeImage, makeMultiArch, writeOciLayout } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';
import { needTools } from '../helpers/tools.js';
import { inspectRaw, scratch, skopeo, skopeoCopy, skopeoMay } from '../helpers/clients.js';

test('concurrent skopeo pushes of the same blobs into several repositories all land intact', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const s = await scratch();
  const reg = await startRegistry();
  try {
    // A layer of a few MB so that the uploads really overlap.
    const big = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    const img = await makeImage({ layers: [{ 'big.bin': big }, { 'small.txt': 'small\n' }], label: 'concurrent' });
    const src = join(s.dir, 'src');
    await writeOciLayout(src, [{ tag: 'v1', image: img }]);
    const repos = ['c/one', 'c/two', 'c/three', 'c/four'];
    await Promise.all(repos.map((r) => skopeoCopy(`oci:${src}:v1`, `docker://${reg.host}/${r}:v1`)));
    for (const r of repos) {
      assert.deepEqual(await inspectRaw(`docker://${reg.host}/${r}:v1`), img.manifest);
      const blob = await fetch(`${reg.url}/v2/${r}/blobs/${img.layers[0]!.descriptor.digest}`);
      assert.deepEqual(Buffer.from(await blob.arrayBuffer()), img.layers[0]!.bytes);
    }
    // One copy of each blob in the store, and no upload session left behind.
    for (const r of repos) assert.deepEqual(await reg.files(`docker/registry/v2/repositories/${r}/_uploads`), []);
    const blobs = await reg.files('docker/registry/v2/blobs/sha256');
    assert.equal(
      blobs.length,
      1 + 1 + img.layers.length,
      `manifest, config and layers, each stored once: ${blobs.join(', ')}`,
    );
  } finally {
    await reg.close();
    await s.cleanup();
  }
});

test('skopeo sync mirrors a whole repository (tags and an index) from one Sluice to another', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const s = await scratch();
  const a = await startRegistry();
  const b = await startRegistry();
  try {
    const img1 = await makeImage({ label: 'sync-1' });
    const img2 = await makeImage({ label: 'sync-2' });
    const idx = await makeMultiArch('sync');
    const src = join(s.dir, 'src');
    await writeOciLayout(src, [
      { tag: 'one', image: img1 },
      { tag: 'two', image: img2 },
      { tag: 'multi', image: idx },
    ]);
    await skopeoCopy(`oci:${src}:one`, `docker://${a.host}/team/app:1.0`);
    await skopeoCopy(`oci:${src}:two`, `docker://${a.host}/team/app:2.0`);
    await skopeoCopy(`oci:${src}:multi`, `docker://${a.host}/team/app:multi`, ['--all']);

    const listed = JSON.parse(
      (await skopeo(['list-tags', '--tls-verify=false', `docker://${a.host}/team/app`])).stdout,
    );
    assert.deepEqual(listed.Tags, ['1.0', '2.0', 'multi']);

    await skopeo([
      'sync',
      '--all',
      '--src',
      'docker',
      '--dest',
      'docker',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `${a.host}/team/app`,
      `${b.host}/mirror`,
    ]);
    const mirrored = await (await fetch(`${b.url}/v2/mirror/app/tags/list`)).json();
    assert.deepEqual(mirrored, { name: 'mirror/app', tags: ['1.0', '2.0', 'multi'] });
    assert.deepEqual(await inspectRaw(`docker://${b.host}/mirror/app:1.0`), img1.manifest);
    assert.deepEqual(await inspectRaw(`docker://${b.host}/mirror/app:2.0`), img2.manifest);
    assert.deepEqual(await inspectRaw(`docker://${b.host}/mirror/app:multi`), idx.manifest);
    for (const child of idx.images)
      assert.deepEqual(await inspectRaw(`docker://${b.host}/mirror/app@${child.digest}`), child.manifest);
  } finally {
    await a.close();
    await b.close();
    await s.cleanup();
  }
});

test('skopeo delete removes a manifest and its tags; the image can be pushed again', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const s = await scratch();
  const reg = await startRegistry();
  try {
    const img = await makeImage({ label: 'delete' });
    const keep = await makeImage({ label: 'keep' });
    const src = join(s.dir, 'src');
    await writeOciLayout(src, [
      { tag: 'v1', image: img },
      { tag: 'keep', image: keep },
    ]);
    const repo = `${reg.host}/del/app`;
    await skopeoCopy(`oci:${src}:v1`, `docker://${repo}:v1`);
    await skopeoCopy(`oci:${src}:v1`, `docker://${repo}:also`);
    await skopeoCopy(`oci:${src}:keep`, `docker://${repo}:keep`);

    await skopeo(['delete', '--tls-verify=false', `docker://${repo}@${img.digest}`]);
    const gone = await skopeoMay(['inspect', '--raw', '--tls-verify=false', `docker://${repo}@${img.digest}`]);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /manifest unknown/);
    assert.deepEqual(await (await fetch(`${reg.url}/v2/del/app/tags/list`)).json(), {
      name: 'del/app',
      tags: ['keep'],
    });
    assert.deepEqual(await inspectRaw(`docker://${repo}:keep`), keep.manifest);

    await skopeoCopy(`oci:${src}:v1`, `docker://${repo}:v1`);
    assert.deepEqual(await inspectRaw(`docker://${repo}:v1`), img.manifest);
  } finally {
    await reg.close();
    await s.cleanup();
  }
});
