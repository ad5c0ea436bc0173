import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, makeIndex, pushBlob, pushImage, pushManifest } from '../helpers/images.js';
import { assertIntact, bytesOf, errorCode, makeArtifact } from '../helpers/oci-http.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';

test('OCI manifest: PUT by tag, then GET and HEAD by tag and by digest with exact bytes and headers', async () => {
  const reg = await startRegistry();
  try {
    const img = await makeImage({ label: 'oci' });
    await pushBlob(reg.url, 'm/oci', img.config);
    for (const l of img.layers) await pushBlob(reg.url, 'm/oci', l);
    const put = await pushManifest(reg.url, 'm/oci', 'v1', img.manifest, img.mediaType);
    assert.equal(put.status, 201);
    assert.equal(put.headers.get('docker-content-digest'), img.digest);
    assert.equal(put.headers.get('location'), `/v2/m/oci/manifests/${img.digest}`);
    for (const ref of ['v1', img.digest]) {
      const g = await fetch(`${reg.url}/v2/m/oci/manifests/${ref}`, { headers: { accept: MediaType.OciManifest } });
      assert.equal(g.status, 200);
      assert.equal(g.headers.get('content-type'), MediaType.OciManifest);
      assert.equal(g.headers.get('docker-content-digest'), img.digest);
      assert.equal(g.headers.get('content-length'), String(img.manifest.length));
      assert.deepEqual(await bytesOf(g), img.manifest);
      const h = await fetch(`${reg.url}/v2/m/oci/manifests/${ref}`, {
        method: 'HEAD',
        headers: { accept: MediaType.OciManifest },
      });
      assert.equal(h.status, 200);
      assert.equal(h.headers.get('docker-content-digest'), img.digest);
      assert.equal(h.headers.get('content-length'), String(img.manifest.length));
      assert.equal(h.headers.get('content-type'), MediaType.OciManifest);
    }
  } finally {
    await reg.close();
  }
});

test('bytes are stored as pushed: odd whitespace and key order survive, the digest is of those bytes', async () => {
  const reg = await startRegistry();
  try {
    const img = await makeImage();
    await pushImage(reg.url, 'm/raw', 'base', img);
    const odd = Buffer.from(
      `{\n\t"layers" :[${img.layers.map((l) => JSON.stringify(l.descriptor)).join(' ,\n ')}],  "config":${JSON.stringify(img.config.descriptor)},\r\n"schemaVersion":2,"mediaType":"${MediaType.OciManifest}"   }\n\n`,
    );
    const r = await pushManifest(reg.url, 'm/raw', 'odd', odd, MediaType.OciManifest);
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('docker-content-digest'), digestOf(odd));
    const g = await fetch(`${reg.url}/v2/m/raw/manifests/odd`);
    assert.deepEqual(await bytesOf(g), odd);
  } finally {
    await reg.close();
  }
});

test('Docker schema 2 manifest and manifest list round-trip with their own media types', async () => {
  const reg = await startRegistry();
  try {
    const a = await makeImage({ format: 'docker', platform: { os: 'linux', architecture: 'amd64' } });
    const b = await makeImage({ format: 'docker', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    const list = makeIndex([a, b], 'docker');
    await pushImage(reg.url, 'm/docker', 'multi', list);
    await pushImage(reg.url, 'm/docker', 'single', a);
    await assertIntact(reg.url, 'm/docker', 'multi', list);
    await assertIntact(reg.url, 'm/docker', 'single', a);
    const g = await fetch(`${reg.url}/v2/m/docker/manifests/multi`, {
      headers: { accept: `${MediaType.DockerManifestList}, ${MediaType.DockerManifest}` },
    });
    assert.equal(g.headers.get('content-type'), MediaType.DockerManifestList);
    const s = await fetch(`${reg.url}/v2/m/docker/manifests/single`, { headers: { accept: MediaType.DockerManifest } });
    assert.equal(s.headers.get('content-type'), MediaType.DockerManifest);
  } finally {
    await reg.close();
  }
});

test('OCI index round-trips; its children are served by digest', async () => {
  const reg = await startRegistry();
  try {
    const a = await makeImage({ platform: { os: 'linux', architecture: 'amd64' } });
    const b = await makeImage({ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    const idx = makeIndex([a, b]);
    await pushImage(reg.url, 'm/index', 'latest', idx);
    await assertIntact(reg.url, 'm/index', 'latest', idx);
    const g = await fetch(`${reg.url}/v2/m/index/manifests/latest`, {
      headers: { accept: `${MediaType.OciManifest};q=0.5, ${MediaType.OciIndex}` },
    });
    assert.equal(g.status, 200);
    assert.equal(g.headers.get('content-type'), MediaType.OciIndex);
  } finally {
    await reg.close();
  }
});

test('Accept negotiation: a tag whose type the client does not accept is MANIFEST_UNKNOWN; by digest, or */* or no Accept, it is served', async () => {
  const reg = await startRegistry();
  try {
    const img = await makeImage();
    await pushImage(reg.url, 'm/accept', 'v1', img);
    const r = await fetch(`${reg.url}/v2/m/accept/manifests/v1`, { headers: { accept: MediaType.DockerManifest } });
    assert.equal(r.status, 404);
    assert.equal(await errorCode(r), 'MANIFEST_UNKNOWN');
    const wrongFamily = await fetch(`${reg.url}/v2/m/accept/manifests/v1`, { headers: { accept: 'text/*' } });
    assert.equal(wrongFamily.status, 404);
    for (const accept of ['*/*', 'application/*', undefined, `${MediaType.DockerManifest}, ${MediaType.OciManifest}`]) {
      const ok = await fetch(`${reg.url}/v2/m/accept/manifests/v1`, { headers: accept ? { accept } : {} });
      assert.equal(ok.status, 200, String(accept));
      assert.deepEqual(await bytesOf(ok), img.manifest);
    }
    const byDigest = await fetch(`${reg.url}/v2/m/accept/manifests/${img.digest}`, {
      headers: { accept: MediaType.DockerManifest },
    });
    assert.equal(byDigest.status, 200);
    assert.equal(byDigest.headers.get('content-type'), MediaType.OciManifest);
  } finally {
    await reg.close();
  }
});

test('artifact manifest with artifactType and the empty config is accepted and served', async () => {
  const reg = await startRegistry();
  try {
    const art = makeArtifact({ artifactType: 'application/vnd.example.sbom+json', payload: '{"sbom":true}' });
    await pushImage(reg.url, 'm/artifact', 'sbom', art);
    await assertIntact(reg.url, 'm/artifact', 'sbom', art);
    assert.equal(art.config.descriptor.mediaType, 'application/vnd.oci.empty.v1+json');
  } finally {
    await reg.close();
  }
});

test('PUT by digest without a tag; a tag PUT again moves the tag', async () => {
  const reg = await startRegistry();
  try {
    const a = await makeImage({ label: 'a' });
    const b = await makeImage({ label: 'b' });
    await pushImage(reg.url, 'm/move', a.digest, a);
    const tags0 = await (await fetch(`${reg.url}/v2/m/move/tags/list`)).json();
    assert.deepEqual(tags0, { name: 'm/move', tags: [] });
    await pushImage(reg.url, 'm/move', 't', a);
    await pushImage(reg.url, 'm/move', 't', b);
    const g = await fetch(`${reg.url}/v2/m/move/manifests/t`);
    assert.equal(g.headers.get('docker-content-digest'), b.digest);
    // The old revision is still there by digest.
    assert.equal((await fetch(`${reg.url}/v2/m/move/manifests/${a.digest}`)).status, 200);
  } finally {
    await reg.close();
  }
});

test('PUT by digest with ?tag= tags it in the same request, answering OCI-Tag; a bad tag changes nothing', async () => {
  const reg = await startRegistry();
  try {
    const a = await makeImage({ label: 'qa' });
    await pushBlob(reg.url, 'm/qtag', a.config);
    for (const l of a.layers) await pushBlob(reg.url, 'm/qtag', l);
    const bad = await fetch(`${reg.url}/v2/m/qtag/manifests/${a.digest}?tag=ok&tag=-bad`, {
      method: 'PUT',
      body: a.manifest,
      headers: { 'content-type': a.mediaType },
    });
    assert.equal(bad.status, 400);
    assert.equal(await errorCode(bad), 'TAG_INVALID');
    assert.equal((await fetch(`${reg.url}/v2/m/qtag/manifests/${a.digest}`)).status, 404, 'nothing was stored');
    const put = await fetch(`${reg.url}/v2/m/qtag/manifests/${a.digest}?tag=v1&tag=latest`, {
      method: 'PUT',
      body: a.manifest,
      headers: { 'content-type': a.mediaType },
    });
    assert.equal(put.status, 201);
    assert.equal(put.headers.get('oci-tag'), 'v1, latest');
    const tags = await (await fetch(`${reg.url}/v2/m/qtag/tags/list`)).json();
    assert.deepEqual(tags, { name: 'm/qtag', tags: ['latest', 'v1'] });
    for (const t of ['v1', 'latest']) {
      const g = await fetch(`${reg.url}/v2/m/qtag/manifests/${t}`);
      assert.equal(g.headers.get('docker-content-digest'), a.digest);
    }
  } finally {
    await reg.close();
  }
});

test('PUT checks that config and layers are in the repository (MANIFEST_BLOB_UNKNOWN)', async () => {
  const reg = await startRegistry();
  try {
    const img = await makeImage();
    // The blobs exist, but in another repository only.
    await pushImage(reg.url, 'm/elsewhere', 'v1', img);
    const r = await pushManifest(reg.url, 'm/missing', 'v1', img.manifest, img.mediaType);
    assert.equal(r.status, 400);
    assert.equal(await errorCode(r), 'MANIFEST_BLOB_UNKNOWN');
    await pushBlob(reg.url, 'm/missing', img.config);
    const r2 = await pushManifest(reg.url, 'm/missing', 'v1', img.manifest, img.mediaType);
    assert.equal(r2.status, 400);
    const body = (await r2.json()) as { errors: { code: string; message: string; detail: { digest: string }[] }[] };
    assert.equal(body.errors[0]!.code, 'MANIFEST_BLOB_UNKNOWN');
    assert.deepEqual(body.errors[0]!.detail, [{ digest: img.layers[0]!.descriptor.digest }]);
    assert.equal((await fetch(`${reg.url}/v2/m/missing/manifests/v1`)).status, 404);
    assert.equal((await fetch(`${reg.url}/v2/m/missing/manifests/${img.digest}`)).status, 404);
  } finally {
    await reg.close();
  }
});

test('a manifest whose subject does not exist yet is accepted, answering OCI-Subject', async () => {
  const reg = await startRegistry();
  try {
    const subject = { mediaType: MediaType.OciManifest, digest: digestOf('a future image'), size: 123 };
    const art = makeArtifact({ artifactType: 'application/vnd.example.sig', payload: 'sig', subject });
    await pushBlob(reg.url, 'm/subject', art.config);
    await pushBlob(reg.url, 'm/subject', art.layers[0]!);
    const r = await pushManifest(reg.url, 'm/subject', art.digest, art.manifest, art.mediaType);
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('oci-subject'), subject.digest);
    // Without a subject there is no OCI-Subject header.
    const plain = makeArtifact({ artifactType: 'application/vnd.example.sig', payload: 'plain' });
    await pushBlob(reg.url, 'm/subject', plain.layers[0]!);
    const r2 = await pushManifest(reg.url, 'm/subject', 'plain', plain.manifest, plain.mediaType);
    assert.equal(r2.status, 201);
    assert.equal(r2.headers.get('oci-subject'), null);
  } finally {
    await reg.close();
  }
});

test('manifest DELETE: by tag removes only the tag, by digest removes the revision and its tags', async () => {
  const reg = await startRegistry();
  try {
    const img = await makeImage();
    await pushImage(reg.url, 'm/del', 'a', img);
    await pushImage(reg.url, 'm/del', 'b', img);
    const dt = await fetch(`${reg.url}/v2/m/del/manifests/a`, { method: 'DELETE' });
    assert.equal(dt.status, 202);
    assert.equal((await fetch(`${reg.url}/v2/m/del/manifests/a`)).status, 404);
    assert.equal((await fetch(`${reg.url}/v2/m/del/manifests/b`)).status, 200);
    const dd = await fetch(`${reg.url}/v2/m/del/manifests/${img.digest}`, { method: 'DELETE' });
    assert.equal(dd.status, 202);
    const gone = await fetch(`${reg.url}/v2/m/del/manifests/${img.digest}`);
    assert.equal(gone.status, 404);
    assert.equal(await errorCode(gone), 'MANIFEST_UNKNOWN');
    assert.equal((await fetch(`${reg.url}/v2/m/del/manifests/b`)).status, 404);
    const tags = await (await fetch(`${reg.url}/v2/m/del/tags/list`)).json();
    assert.deepEqual(tags, { name: 'm/del', tags: [] });
    const again = await fetch(`${reg.url}/v2/m/del/manifests/${img.digest}`, { method: 'DELETE' });
    assert.equal(again.status, 404);
    assert.equal(await errorCode(again), 'MANIFEST_UNKNOWN');
  } finally {
    await reg.close();
  }
});

test('manifest DELETE is UNSUPPORTED (405) when deletion is disabled, and the image stays', async () => {
  const reg = await startRegistry({ storage: { delete: { enabled: false } } });
  try {
    const img = await makeImage();
    await pushImage(reg.url, 'm/keep', 'v1', img);
    for (const ref of ['v1', img.digest]) {
      const r = await fetch(`${reg.url}/v2/m/keep/manifests/${ref}`, { method: 'DELETE' });
      assert.equal(r.status, 405);
      assert.equal(await errorCode(r), 'UNSUPPORTED');
    }
    await assertIntact(reg.url, 'm/keep', 'v1', img);
  } finally {
    await reg.close();
  }
});

test('unknown manifests: MANIFEST_UNKNOWN in a known repository, NAME_UNKNOWN for an unknown one', async () => {
  const reg = await startRegistry();
  try {
    const img = await makeImage();
    await pushImage(reg.url, 'm/known', 'v1', img);
    const a = await fetch(`${reg.url}/v2/m/known/manifests/nope`);
    assert.equal(a.status, 404);
    assert.equal(await errorCode(a), 'MANIFEST_UNKNOWN');
    const b = await fetch(`${reg.url}/v2/m/unknown/manifests/v1`);
    assert.equal(b.status, 404);
    assert.equal(await errorCode(b), 'NAME_UNKNOWN');
    const h = await fetch(`${reg.url}/v2/m/known/manifests/nope`, { method: 'HEAD' });
    assert.equal(h.status, 404);
  } finally {
    await reg.close();
  }
});
