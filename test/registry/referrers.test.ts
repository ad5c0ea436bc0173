import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, makeMultiArch, pushImage } from '../helpers/images.js';
import { errorCode, makeArtifact } from '../helpers/oci-http.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';

interface Index {
  schemaVersion: number;
  mediaType: string;
  manifests: {
    mediaType: string;
    digest: string;
    size: number;
    artifactType?: string;
    annotations?: Record<string, string>;
  }[];
}

async function referrers(
  url: string,
  repo: string,
  digest: string,
  artifactType?: string,
): Promise<{ r: Response; body: Index }> {
  const q = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
  const r = await fetch(`${url}/v2/${repo}/referrers/${digest}${q}`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), MediaType.OciIndex);
  return { r, body: (await r.json()) as Index };
}

test('referrers: an empty index when nothing refers to a digest (even an unknown one)', async () => {
  const reg = await startRegistry();
  try {
    const img = await makeImage();
    await pushImage(reg.url, 'ref/empty', 'v1', img);
    for (const d of [img.digest, digestOf('nothing')]) {
      const { r, body } = await referrers(reg.url, 'ref/empty', d);
      assert.deepEqual(body, { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] });
      assert.equal(r.headers.get('oci-filters-applied'), null);
    }
    const bad = await fetch(`${reg.url}/v2/ref/empty/referrers/sha256:nope`);
    assert.equal(bad.status, 400);
    assert.equal(await errorCode(bad), 'DIGEST_INVALID');
  } finally {
    await reg.close();
  }
});

test('referrers: descriptors with artifactType, size and annotations; artifactType filter with OCI-Filters-Applied', async () => {
  const reg = await startRegistry();
  try {
    const img = await makeImage();
    await pushImage(reg.url, 'ref/list', 'v1', img);
    const subject = { mediaType: img.mediaType, digest: img.digest, size: img.manifest.length };
    const sig = makeArtifact({
      artifactType: 'application/vnd.example.signature',
      payload: 'sig',
      subject,
      annotations: { 'org.example.k': 'v' },
    });
    const sbom = makeArtifact({ artifactType: 'application/vnd.example.sbom', payload: 'sbom', subject });
    const unrelated = makeArtifact({ artifactType: 'application/vnd.example.sbom', payload: 'alone' });
    for (const a of [sig, sbom]) await pushImage(reg.url, 'ref/list', a.digest, a);
    await pushImage(reg.url, 'ref/list', 'alone', unrelated);

    const { body } = await referrers(reg.url, 'ref/list', img.digest);
    const expected = [
      {
        mediaType: MediaType.OciManifest,
        digest: sig.digest,
        size: sig.manifest.length,
        artifactType: 'application/vnd.example.signature',
        annotations: { 'org.example.k': 'v' },
      },
      {
        mediaType: MediaType.OciManifest,
        digest: sbom.digest,
        size: sbom.manifest.length,
        artifactType: 'application/vnd.example.sbom',
      },
    ].sort((a, b) => (a.digest < b.digest ? -1 : 1));
    assert.deepEqual(body.manifests, expected);

    const f = await referrers(reg.url, 'ref/list', img.digest, 'application/vnd.example.sbom');
    assert.equal(f.r.headers.get('oci-filters-applied'), 'artifactType');
    assert.deepEqual(
      f.body.manifests.map((m) => m.digest),
      [sbom.digest],
    );
    const none = await referrers(reg.url, 'ref/list', img.digest, 'application/vnd.other');
    assert.deepEqual(none.body.manifests, []);

    // Referrers are per repository.
    const other = await referrers(reg.url, 'ref/other', img.digest);
    assert.deepEqual(other.body.manifests, []);

    // A deleted referrer leaves the list.
    const del = await fetch(`${reg.url}/v2/ref/list/manifests/${sig.digest}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    const after = await referrers(reg.url, 'ref/list', img.digest);
    assert.deepEqual(
      after.body.manifests.map((m) => m.digest),
      [sbom.digest],
    );
  } finally {
    await reg.close();
  }
});

test('referrers: an image manifest without artifactType reports its config media type; an index can be a referrer', async () => {
  const reg = await startRegistry();
  try {
    const img = await makeImage();
    await pushImage(reg.url, 'ref/types', 'v1', img);
    const subject = { mediaType: img.mediaType, digest: img.digest, size: img.manifest.length };
    const plain = makeArtifact({ artifactType: 'x', payload: 'p', subject });
    const doc = JSON.parse(plain.manifest.toString());
    delete doc.artifactType;
    doc.config = { mediaType: 'application/vnd.example.config+json', digest: plain.config.descriptor.digest, size: 2 };
    const bytes = Buffer.from(JSON.stringify(doc));
    await pushImage(reg.url, 'ref/types', digestOf(bytes), { ...plain, manifest: bytes, digest: digestOf(bytes) });

    const child = await makeImage({ label: 'child' });
    await pushImage(reg.url, 'ref/types', child.digest, child);
    const idxBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        artifactType: 'application/vnd.example.bundle',
        manifests: [{ mediaType: child.mediaType, digest: child.digest, size: child.manifest.length }],
        subject,
      }),
    );
    const put = await fetch(`${reg.url}/v2/ref/types/manifests/${digestOf(idxBytes)}`, {
      method: 'PUT',
      body: idxBytes,
      headers: { 'content-type': MediaType.OciIndex },
    });
    assert.equal(put.status, 201);
    assert.equal(put.headers.get('oci-subject'), img.digest);

    const { body } = await referrers(reg.url, 'ref/types', img.digest);
    const byDigest = new Map(body.manifests.map((m) => [m.digest, m]));
    assert.equal(byDigest.get(digestOf(bytes))?.artifactType, 'application/vnd.example.config+json');
    assert.equal(byDigest.get(digestOf(idxBytes))?.artifactType, 'application/vnd.example.bundle');
    assert.equal(byDigest.get(digestOf(idxBytes))?.mediaType, MediaType.OciIndex);
  } finally {
    await reg.close();
  }
});

test('referrers of a subject pushed later, and of an index subject', async () => {
  const reg = await startRegistry();
  try {
    const idx = await makeMultiArch('ref');
    const subject = { mediaType: idx.mediaType, digest: idx.digest, size: idx.manifest.length };
    const sig = makeArtifact({ artifactType: 'application/vnd.example.signature', payload: 'early', subject });
    // The referrer first, its subject afterwards.
    await pushImage(reg.url, 'ref/later', sig.digest, sig);
    await pushImage(reg.url, 'ref/later', 'latest', idx);
    const { body } = await referrers(reg.url, 'ref/later', idx.digest);
    assert.deepEqual(
      body.manifests.map((m) => m.digest),
      [sig.digest],
    );
  } finally {
    await reg.close();
  }
});

test('referrers written without a _referrers index (as Distribution writes them) are found after one scan, and the index is rebuilt', async () => {
  const first = await startRegistry();
  const root = first.root;
  let second: Awaited<ReturnType<typeof startRegistry>> | undefined;
  try {
    const img = await makeImage();
    await pushImage(first.url, 'ref/foreign', 'v1', img);
    const subject = { mediaType: img.mediaType, digest: img.digest, size: img.manifest.length };
    const sig = makeArtifact({ artifactType: 'application/vnd.example.signature', payload: 'foreign', subject });
    await pushImage(first.url, 'ref/foreign', sig.digest, sig);
    // What Distribution leaves behind: the revision link, but no Sluice referrers index.
    const referrersDir = 'docker/registry/v2/repositories/ref/foreign/_referrers';
    await first.ctx.driver.delete(referrersDir);
    await first.app.close();

    second = await startRegistry({}, root);
    const { body } = await referrers(second.url, 'ref/foreign', img.digest);
    assert.deepEqual(
      body.manifests.map((m) => [m.digest, m.artifactType]),
      [[sig.digest, 'application/vnd.example.signature']],
    );
    const [alg, hex] = img.digest.split(':') as [string, string];
    const [salg, shex] = sig.digest.split(':') as [string, string];
    const link = `${referrersDir}/${alg}/${hex}/${salg}/${shex}/link`;
    assert.equal((await second.ctx.driver.stat(link))?.isDirectory, false, 'the referrers link is written back');
  } finally {
    await second?.close();
    // Removes the storage too, now that the second registry is done with it.
    await first.close().catch(() => undefined);
  }
});
