import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry } from '../helpers/registry.js';
import { makeMultiArch, pushImage, pushManifest, type TestIndex } from '../helpers/images.js';
import { bytesOf, errorOf } from '../helpers/oci-http.js';

/** Pushes only the children for the given architectures, then the index itself; returns the index PUT. */
async function pushPartial(url: string, repo: string, idx: TestIndex, archs: string[]): Promise<Response> {
  for (const img of idx.images)
    if (archs.includes(img.platform.architecture)) await pushImage(url, repo, img.digest, img);
  return pushManifest(url, repo, 'latest', idx.manifest, idx.mediaType);
}

function child(idx: TestIndex, arch: string) {
  return idx.images.find((i) => i.platform.architecture === arch)!;
}

test('indexes.platforms all (the default): an index with a missing child is refused, a complete one accepted', async () => {
  const reg = await startRegistry();
  try {
    const idx = await makeMultiArch('all');
    const r = await pushPartial(reg.url, 'idx/all', idx, ['amd64', 'arm64']);
    assert.equal(r.status, 400);
    const e = await errorOf(r);
    assert.equal(e.code, 'MANIFEST_BLOB_UNKNOWN');
    assert.match(e.message, /linux\/s390x/);
    assert.match(e.message, new RegExp(child(idx, 's390x').digest));
    assert.equal((await fetch(`${reg.url}/v2/idx/all/manifests/latest`)).status, 404);
    await pushImage(reg.url, 'idx/all', child(idx, 's390x').digest, child(idx, 's390x'));
    const ok = await pushManifest(reg.url, 'idx/all', 'latest', idx.manifest, idx.mediaType);
    assert.equal(ok.status, 201);
  } finally {
    await reg.close();
  }
});

test('indexes.platforms none: a partial index is accepted; its missing child answers MANIFEST_UNKNOWN naming platform and index', async () => {
  const reg = await startRegistry({ validation: { manifests: { indexes: { platforms: 'none' } } } });
  try {
    const idx = await makeMultiArch('none');
    const r = await pushPartial(reg.url, 'idx/none', idx, ['amd64']);
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('docker-content-digest'), idx.digest);
    const g = await fetch(`${reg.url}/v2/idx/none/manifests/latest`, { headers: { accept: idx.mediaType } });
    assert.equal(g.status, 200);
    assert.deepEqual(await bytesOf(g), idx.manifest);
    const present = await fetch(`${reg.url}/v2/idx/none/manifests/${child(idx, 'amd64').digest}`);
    assert.equal(present.status, 200);
    for (const [arch, platform] of [
      ['s390x', 'linux/s390x'],
      ['arm64', 'linux/arm64/v8'],
    ]) {
      const m = await fetch(`${reg.url}/v2/idx/none/manifests/${child(idx, arch!).digest}`);
      assert.equal(m.status, 404);
      const e = await errorOf(m);
      assert.equal(e.code, 'MANIFEST_UNKNOWN');
      assert.ok(e.message.includes(`${platform} of index ${idx.digest} is not stored in this registry`), e.message);
    }
    // Even with no child at all.
    const bare = await makeMultiArch('bare');
    const b = await pushManifest(reg.url, 'idx/none', 'bare', bare.manifest, bare.mediaType);
    assert.equal(b.status, 201);
    // HEAD of the missing child is a plain 404.
    const h = await fetch(`${reg.url}/v2/idx/none/manifests/${child(idx, 's390x').digest}`, { method: 'HEAD' });
    assert.equal(h.status, 404);
  } finally {
    await reg.close();
  }
});

test('indexes.platforms list: only the listed platforms must be present', async () => {
  const reg = await startRegistry({
    validation: {
      manifests: {
        indexes: {
          platforms: 'list',
          platformlist: [
            { os: 'linux', architecture: 'amd64' },
            { os: 'linux', architecture: 'arm64' },
          ],
        },
      },
    },
  });
  try {
    const idx = await makeMultiArch('list');
    const missingListed = await pushPartial(reg.url, 'idx/list', idx, ['amd64', 's390x']);
    assert.equal(missingListed.status, 400);
    const e = await errorOf(missingListed);
    assert.equal(e.code, 'MANIFEST_BLOB_UNKNOWN');
    assert.match(e.message, /linux\/arm64/);
    await pushImage(reg.url, 'idx/list', child(idx, 'arm64').digest, child(idx, 'arm64'));
    const idx2 = await makeMultiArch('list2');
    const ok = await pushPartial(reg.url, 'idx/list2', idx2, ['amd64', 'arm64']);
    assert.equal(ok.status, 201);
    const miss = await fetch(`${reg.url}/v2/idx/list2/manifests/${child(idx2, 's390x').digest}`);
    assert.equal(miss.status, 404);
    assert.match((await errorOf(miss)).message, new RegExp(`linux/s390x of index ${idx2.digest}`));
    const ok1 = await pushManifest(reg.url, 'idx/list', 'latest', idx.manifest, idx.mediaType);
    assert.equal(ok1.status, 201);
  } finally {
    await reg.close();
  }
});
