import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { digestOf } from '../../src/oci/digest.js';
import {
  inspectRaw,
  layoutDigest,
  scratch,
  skopeoCopy,
  startDistribution,
  type Distribution,
} from '../helpers/clients.js';
import {
  makeImage,
  makeMultiArch,
  pushBlob,
  pushImage,
  pushManifest,
  writeOciLayout,
  type TestImage,
} from '../helpers/images.js';
import { assertIntact, startSession, withDigest } from '../helpers/oci-http.js';
import { startRegistry, testS3, type TestRegistry } from '../helpers/registry.js';
import { startS3 } from '../helpers/s3.js';
import { needTools } from '../helpers/tools.js';

// Distribution 2.8.2 (its s3-aws driver) and Sluice on one folder of one bucket (s3rver): each serves
// what the other wrote, because both keep Distribution's object layout.

/** A Sluice node and a Distribution on the same rootdirectory of the test process's bucket. */
async function pair(
  t: TestContext,
): Promise<
  { sluice: TestRegistry; dist: Distribution; keys: () => Promise<string[]>; close: () => Promise<void> } | undefined
> {
  if (!needTools(t, 'docker-registry')) return undefined;
  const s3 = await testS3();
  const root = `dist-${randomUUID()}`;
  const sluice = await startRegistry({ storage: { s3: s3.config(root) } });
  let dist: Distribution;
  try {
    dist = await startDistribution({ s3: s3.config(root) });
  } catch (e) {
    await sluice.close();
    throw e;
  }
  return {
    sluice,
    dist,
    keys: () => s3.keys(`${root}/`),
    close: async () => {
      await dist.stop();
      await sluice.close();
    },
  };
}

async function tags(url: string, repo: string): Promise<unknown> {
  return (await fetch(`${url}/v2/${repo}/tags/list`)).json();
}

test('Distribution 2.8 serves what Sluice wrote in the bucket: a multi-arch index, a 12 MiB multipart layer, a chunked upload, tags and catalog', async (t) => {
  const p = await pair(t);
  if (!p) return;
  try {
    const index = await makeMultiArch('s3-dist-index');
    const big = await makeImage({ layers: [{ big: randomBytes(12 << 20) }, { small: 'x\n' }], label: 's3-dist-big' });
    await pushImage(p.sluice.url, 'team/multi', 'v1', index);
    await pushImage(p.sluice.url, 'team/big', 'v1', big);
    await pushImage(p.sluice.url, 'team/big', 'v2', big);
    // A blob sent in three PATCHes (parts in the bucket, assembled on commit).
    const data = randomBytes((6 << 20) + 77);
    let loc = await startSession(p.sluice.url, 'team/chunked');
    for (const [from, to] of [
      [0, 1000],
      [1000, 5 << 20],
      [5 << 20, data.length],
    ] as const) {
      const r = await fetch(loc, {
        method: 'PATCH',
        body: data.subarray(from, to),
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${from}-${to - 1}` },
      });
      assert.equal(r.status, 202, await r.text());
      loc = new URL(r.headers.get('location')!, loc).toString();
    }
    assert.equal((await fetch(withDigest(loc, digestOf(data)), { method: 'PUT' })).status, 201);

    await assertIntact(p.dist.url, 'team/multi', 'v1', index);
    await assertIntact(p.dist.url, 'team/big', 'v1', big);
    assert.deepEqual(await tags(p.dist.url, 'team/big'), { name: 'team/big', tags: ['v1', 'v2'] });
    const g = await fetch(`${p.dist.url}/v2/team/chunked/blobs/${digestOf(data)}`);
    assert.equal(g.status, 200);
    assert.ok(Buffer.from(await g.arrayBuffer()).equals(data));
    const cat = (await (await fetch(`${p.dist.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.deepEqual(cat.repositories, ['team/big', 'team/chunked', 'team/multi']);
    // skopeo reads the exact bytes from Distribution.
    if (needTools(t, 'skopeo'))
      assert.deepEqual(await inspectRaw(`docker://${p.dist.host}/team/multi:v1`), index.manifest);
  } finally {
    await p.close();
  }
});

test('Sluice serves what Distribution wrote in the bucket: links from its mounts, manifests, an index, tags; a delete on Distribution is seen by Sluice', async (t) => {
  const p = await pair(t);
  if (!p) return;
  const s = await scratch('s3-dist-');
  try {
    // Distribution's s3-aws driver resumes an upload by listing multipart uploads (ListMultipartUploads),
    // which s3rver does not have: every PATCH of blob data to Distribution fails here. Everything else it
    // writes (mount links, manifest revisions, tags, index links, deletes) is tested below; the blob data
    // it mounts was put in the bucket by Sluice.
    const session = await fetch(`${p.dist.url}/v2/probe/blobs/uploads/`, { method: 'POST' });
    assert.equal(session.status, 202);
    const patch = await fetch(new URL(session.headers.get('location')!, p.dist.url), {
      method: 'PATCH',
      body: Buffer.from('probe'),
      headers: { 'content-type': 'application/octet-stream' },
    });
    await patch.arrayBuffer();
    t.diagnostic(
      `Distribution's blob upload on s3rver: PATCH answered ${patch.status}${patch.status === 500 ? ' (ListMultipartUploads is not implemented by s3rver)' : ''}`,
    );

    const one = await makeImage({ layers: [{ a: randomBytes(3 << 20) }], label: 'from-dist-one' });
    const two = await makeImage({ label: 'from-dist-two' });
    const index = await makeMultiArch('from-dist-index');
    const images: TestImage[] = [one, two, ...index.images];
    // The blobs reach the bucket through Sluice, in a repository Distribution then mounts from.
    for (const img of images)
      for (const b of [img.config, ...img.layers]) await pushBlob(p.sluice.url, 'staging/blobs', b);
    for (const img of images) {
      for (const b of [img.config, ...img.layers]) {
        const m = await fetch(
          `${p.dist.url}/v2/dist/app/blobs/uploads/?mount=${b.descriptor.digest}&from=staging/blobs`,
          { method: 'POST' },
        );
        assert.equal(m.status, 201, `Distribution mounts ${b.descriptor.digest}`);
      }
    }
    // Distribution writes the manifests and tags.
    for (const child of index.images)
      assert.equal(
        (await pushManifest(p.dist.url, 'dist/app', child.digest, child.manifest, child.mediaType)).status,
        201,
      );
    assert.equal((await pushManifest(p.dist.url, 'dist/app', 'multi', index.manifest, index.mediaType)).status, 201);
    assert.equal((await pushManifest(p.dist.url, 'dist/app', 'v1', one.manifest, one.mediaType)).status, 201);
    assert.equal((await pushManifest(p.dist.url, 'dist/app', 'gone', two.manifest, two.mediaType)).status, 201);
    const keys = await p.keys();
    assert.ok(
      keys.some((k) => k.endsWith('/repositories/dist/app/_manifests/tags/multi/current/link')),
      keys.join('\n'),
    );

    // Sluice serves all of it, byte for byte.
    await assertIntact(p.sluice.url, 'dist/app', 'v1', one);
    await assertIntact(p.sluice.url, 'dist/app', 'multi', index);
    assert.deepEqual(await tags(p.sluice.url, 'dist/app'), { name: 'dist/app', tags: ['gone', 'multi', 'v1'] });
    const cat = (await (await fetch(`${p.sluice.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.ok(cat.repositories.includes('dist/app'), JSON.stringify(cat));
    await assertIntact(p.sluice.url, 'dist/app', 'gone', two);
    // A manifest Distribution deletes (and with it its tag) is gone for Sluice too.
    assert.equal((await fetch(`${p.dist.url}/v2/dist/app/manifests/${two.digest}`, { method: 'DELETE' })).status, 202);
    assert.equal((await fetch(`${p.sluice.url}/v2/dist/app/manifests/gone`)).status, 404);
    assert.equal((await fetch(`${p.sluice.url}/v2/dist/app/manifests/${two.digest}`)).status, 404);
    assert.deepEqual(await tags(p.sluice.url, 'dist/app'), { name: 'dist/app', tags: ['multi', 'v1'] });

    // skopeo pulls from Sluice what Distribution tagged: the same digests.
    if (needTools(t, 'skopeo')) {
      const out = join(s.dir, 'out');
      await skopeoCopy(`docker://${p.sluice.host}/dist/app:multi`, `oci:${out}:multi`, ['--all']);
      assert.equal(await layoutDigest(out, 'multi'), index.digest);
      assert.equal(digestOf(await inspectRaw(`docker://${p.sluice.host}/dist/app:v1`)), one.digest);
    }
  } finally {
    await p.close();
    await s.cleanup();
  }
});

test('with the multipart calls s3rver lacks answered by the bench harness, Distribution uploads blobs too (skopeo push, a 12 MiB layer) and Sluice serves the image', async (t) => {
  if (!needTools(t, 'docker-registry', 'skopeo')) return;
  // A server of its own: the harness answers ListMultipartUploads, ListParts, UploadPartCopy and
  // AbortMultipartUpload, which only Distribution sends (Sluice's driver needs none of them).
  const s3 = await startS3('mp', { multipart: true });
  const s = await scratch('s3-dist-mp-');
  let dist: Distribution | undefined;
  let sluice: TestRegistry | undefined;
  try {
    dist = await startDistribution({ s3: s3.config('both') });
    sluice = await startRegistry({ storage: { s3: s3.config('both') } });
    const img = await makeImage({
      layers: [{ big: randomBytes(12 << 20) }, { small: 'from distribution\n' }],
      label: 's3-dist-mp',
    });
    const src = join(s.dir, 'src');
    await writeOciLayout(src, [{ tag: 'v1', image: img }]);
    await skopeoCopy(`oci:${src}:v1`, `docker://${dist.host}/from/dist:v1`);
    await assertIntact(sluice.url, 'from/dist', 'v1', img);
    assert.deepEqual(await inspectRaw(`docker://${sluice.host}/from/dist:v1`), img.manifest);
    assert.deepEqual(await tags(sluice.url, 'from/dist'), { name: 'from/dist', tags: ['v1'] });
  } finally {
    await dist?.stop();
    await sluice?.close();
    await s3.close();
    await s.cleanup();
  }
});
