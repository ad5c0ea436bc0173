import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DeleteObjectsCommand, S3Client } from '@aws-sdk/client-s3';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { requestsBy, startS3Node, writesIn, type S3Node } from '../helpers/s3-nodes.js';
import { scratch, skopeoCopy, skopeoMay, layoutDigest } from '../helpers/clients.js';
import { needTools } from '../helpers/tools.js';
import { makeImage, makeMultiArch, pushImage, pushManifest } from '../helpers/images.js';
import { assertIntact, bytesOf, errorOf, makeArtifact, startSession } from '../helpers/oci-http.js';

let s3: TestS3;
let work: { dir: string; cleanup: () => Promise<void> };

before(async () => {
  s3 = await startS3('reg');
  work = await scratch('sluice-s3-ro-');
});

after(async () => {
  await s3.close();
  await work.cleanup();
});

const V2 = 'ro/docker/registry/v2';

/** Deletes keys with the builder's own client, as another registry that keeps no referrers index would leave them. */
async function deleteKeys(keys: string[]): Promise<void> {
  const c = new S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  try {
    await c.send(new DeleteObjectsCommand({ Bucket: s3.bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
  } finally {
    c.destroy();
  }
}

test('a read-only node with its own key serves every pull and sends not one write to the bucket', async (t) => {
  const img = await makeImage({ label: 'ro', layers: [{ a: randomBytes(6 << 20) }, { b: 'two' }] });
  const multi = await makeMultiArch('ro-multi');
  const sig = makeArtifact({
    artifactType: 'application/vnd.test.sig',
    payload: 'signed',
    subject: { digest: img.digest, size: img.manifest.length, mediaType: img.mediaType },
  });

  // The builder writes the bucket, and leaves an abandoned upload session behind.
  const builder = await startS3Node(s3, work.dir, { key: 'BUILDER', root: 'ro' });
  let abandoned: string;
  try {
    await pushImage(builder.url, 'team/app', 'v1', img);
    await pushImage(builder.url, 'team/multi', 'v1', multi);
    await pushImage(builder.url, 'team/app', sig.digest, sig);
    abandoned = await startSession(builder.url, 'team/app');
    const p = await fetch(abandoned, {
      method: 'PATCH',
      body: randomBytes(100),
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(p.status, 202);
  } finally {
    await builder.stop();
  }
  // Revisions written by a registry that keeps no referrers index: a writable node would heal the index.
  const referrerLinks = (await s3.keys(`${V2}/repositories/team/app/_referrers/`)).filter((k) => k.endsWith('/link'));
  assert.equal(referrerLinks.length, 1, referrerLinks.join('\n'));
  await deleteKeys(referrerLinks);
  const sessionKeys = await s3.keys(`${V2}/repositories/team/app/_uploads/`);
  assert.ok(sessionKeys.length >= 2, sessionKeys.join('\n'));

  const since = s3.requests.length;
  // Purging is asked for every second with a 1 s age: a writable node would delete the abandoned session.
  let reader: S3Node | undefined = await startS3Node(s3, work.dir, {
    key: 'READER',
    root: 'ro',
    // Keys that can only read: pull times stay in memory (a read-only node otherwise writes its own pull file).
    storage: {
      maintenance: {
        readonly: { enabled: true },
        uploadpurging: { enabled: true, age: '1s', interval: '1s', dryrun: false },
      },
      gc: { pulls: { write: false, flush: '1s' } },
    },
  });
  try {
    const url = reader.url;
    await assertIntact(url, 'team/app', 'v1', img);
    await assertIntact(url, 'team/multi', 'v1', multi);
    const head = await fetch(`${url}/v2/team/app/manifests/v1`, { method: 'HEAD', headers: { accept: img.mediaType } });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('docker-content-digest'), img.digest);
    const layer = img.layers[0]!;
    const range = await fetch(`${url}/v2/team/app/blobs/${layer.descriptor.digest}`, {
      headers: { range: 'bytes=100-5242999' },
    });
    assert.equal(range.status, 206);
    assert.deepEqual(await bytesOf(range), layer.bytes.subarray(100, 5243000));
    const hb = await fetch(`${url}/v2/team/app/blobs/${layer.descriptor.digest}`, { method: 'HEAD' });
    assert.equal(hb.status, 200);
    assert.equal(hb.headers.get('content-length'), String(layer.bytes.length));
    assert.deepEqual(await (await fetch(`${url}/v2/team/app/tags/list`)).json(), { name: 'team/app', tags: ['v1'] });
    assert.deepEqual(await (await fetch(`${url}/v2/_catalog`)).json(), { repositories: ['team/app', 'team/multi'] });
    // The referrer is found by scanning the revisions, in memory only.
    const refs = (await (await fetch(`${url}/v2/team/app/referrers/${img.digest}`)).json()) as {
      manifests: { digest: string }[];
    };
    assert.deepEqual(
      refs.manifests.map((m) => m.digest),
      [sig.digest],
    );
    // Health says something true of a read-only node: the bucket can be read.
    const health = await fetch(`${url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok', storage: 's3' });
    // Pushes, deletes and uploads answer the read-only error.
    for (const [method, path] of [
      ['POST', '/v2/team/app/blobs/uploads/'],
      ['DELETE', `/v2/team/app/manifests/${img.digest}`],
      ['DELETE', `/v2/team/app/blobs/${layer.descriptor.digest}`],
    ] as const) {
      const r = await fetch(`${url}${path}`, { method });
      assert.equal(r.status, 405, `${method} ${path}`);
      assert.match((await errorOf(r)).message, /read-only/);
    }
    const put = await pushManifest(url, 'team/app', 'v2', img.manifest, img.mediaType);
    assert.equal(put.status, 405);
    assert.match((await errorOf(put)).message, /read-only/);
    const cont = await fetch(new URL(new URL(abandoned).pathname, url), {
      method: 'PATCH',
      body: Buffer.from('x'),
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(cont.status, 405);

    if (needTools(t, 'skopeo')) {
      const out = join(work.dir, 'pulled');
      await skopeoCopy(`docker://${reader.host}/team/app:v1`, `oci:${out}:app`);
      assert.equal(await layoutDigest(out, 'app'), img.digest);
      await skopeoCopy(`docker://${reader.host}/team/multi:v1`, `oci:${out}:multi`, ['--all']);
      assert.equal(await layoutDigest(out, 'multi'), multi.digest);
      const push = await skopeoMay([
        'copy',
        '--dest-tls-verify=false',
        `oci:${out}:app`,
        `docker://${reader.host}/team/pushed:v1`,
      ]);
      assert.notEqual(push.code, 0);
      assert.match(push.stderr, /read-only/);
    }
    // Let the purge timer tick at least twice.
    await new Promise((r) => setTimeout(r, 2500));
    const mine = requestsBy(s3, 'READER', since);
    assert.ok(
      mine.filter((r) => r.method === 'GET').length > 10,
      `the reader's requests are attributed to its key (${mine.length})`,
    );
    assert.deepEqual(
      writesIn(mine).map((r) => `${r.method} ${r.url}`),
      [],
    );
    // Nothing the node could have "fixed" was touched.
    assert.deepEqual(
      (await s3.keys(`${V2}/repositories/team/app/_referrers/`)).filter((k) => k.endsWith('/link')),
      [],
    );
    assert.deepEqual(await s3.keys(`${V2}/repositories/team/app/_uploads/`), sessionKeys);
    assert.deepEqual(await s3.keys(`${V2}/repositories/team/pushed/`), []);
  } finally {
    await reader.stop();
    reader = undefined;
  }
  // Nor on the way down, when a node writes its last batch of pull times.
  assert.deepEqual(
    writesIn(requestsBy(s3, 'READER', since)).map((r) => `${r.method} ${r.url}`),
    [],
  );
});
