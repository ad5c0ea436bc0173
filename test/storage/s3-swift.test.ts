import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { digestOf } from '../../src/oci/digest.js';
import { S3Driver } from '../../src/storage/s3.js';
import { checkStorageAtStart } from '../../src/storage/health.js';
import { hasSwift, startSwift, type SwiftKey, type TestSwift } from '../helpers/swift.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { scratch, skopeoCopy } from '../helpers/clients.js';
import { hasTool, clientsRequired } from '../helpers/tools.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { assertIntact, bytesOf, startSession, withDigest } from '../helpers/oci-http.js';

const SWIFT_MISSING =
  'OpenStack Swift not installed (apt-get install swift swift-proxy swift-object swift-container swift-account memcached)';
if (!hasSwift() && clientsRequired) throw new Error(`SLUICE_REQUIRE_CLIENTS is set but ${SWIFT_MISSING}`);
const skip = hasSwift() ? false : SWIFT_MISSING;
let swift: TestSwift;

before(async () => {
  if (!skip) swift = await startSwift('reg');
});

after(async () => {
  await swift?.close();
});

async function node(root: string, key: SwiftKey, storage: Record<string, unknown> = {}): Promise<TestRegistry> {
  return startRegistry({ storage: { filesystem: undefined, s3: swift.config(root, key), ...storage } });
}

test('on Swift s3api (SigV4 checked): push and pull, a 12 MiB multipart blob, an upload hopping between two nodes', {
  skip,
}, async () => {
  const img = await makeImage({ label: 'swift', layers: [{ a: randomBytes(12 << 20) }, { b: 'small' }] });
  const a = await node('sw', swift.builder);
  const b = await node('sw', swift.builder);
  try {
    await pushImage(a.url, 'lib/app', 'v1', img);
    await assertIntact(b.url, 'lib/app', 'v1', img);
    const data = randomBytes((5 << 20) + 777);
    let loc = await startSession(a.url, 'lib/hop');
    const cut = 3 << 20;
    for (const [i, [from, to]] of [
      [0, cut],
      [cut, data.length],
    ].entries()) {
      const target = new URL(new URL(loc).pathname + new URL(loc).search, i ? b.url : a.url).toString();
      const r = await fetch(target, {
        method: 'PATCH',
        body: data.subarray(from, to),
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${from}-${to! - 1}` },
      });
      assert.equal(r.status, 202, await r.text());
      loc = new URL(r.headers.get('location')!, target).toString();
    }
    const done = await fetch(withDigest(loc, digestOf(data)), { method: 'PUT' });
    assert.equal(done.status, 201, await done.text());
    assert.deepEqual(await bytesOf(await fetch(`${a.url}/v2/lib/hop/blobs/${digestOf(data)}`)), data);
  } finally {
    await a.close();
    await b.close();
  }
});

test('on Swift: the read-only key is refused on write by the server; a read-only node with it serves pulls; a writable one would not start', {
  skip,
}, async () => {
  const img = await makeImage({ label: 'swift-ro', layers: [{ a: randomBytes(1 << 20) }] });
  const builder = await node('swro', swift.builder);
  try {
    await pushImage(builder.url, 'lib/ro', 'v1', img);
  } finally {
    await builder.close();
  }
  const d = new S3Driver(swift.config('swro', swift.reader) as never);
  try {
    await assert.rejects(d.putContent('probe', Buffer.from('x')), (e: Error) => e.name === 'AccessDenied');
    // Started without readonly, a node holding this key stops at once with the reason.
    await assert.rejects(
      checkStorageAtStart(d, false),
      /storage\.s3: s3:\/\/reg\/swro is not writable \(Access Denied\.?\)/,
    );
    assert.equal(await checkStorageAtStart(d, true), undefined);
  } finally {
    d.destroy();
  }
  const ro = await node('swro', swift.reader, { maintenance: { readonly: { enabled: true } } });
  try {
    await assertIntact(ro.url, 'lib/ro', 'v1', img);
    assert.equal((await fetch(`${ro.url}/healthz`)).status, 200);
    assert.deepEqual(await (await fetch(`${ro.url}/v2/lib/ro/tags/list`)).json(), { name: 'lib/ro', tags: ['v1'] });
  } finally {
    await ro.close();
  }
});

test('on Swift: presigned redirects pass its signature check; skopeo pulls through them', { skip }, async () => {
  const img = await makeImage({ label: 'swift-redir', format: 'docker', layers: [{ a: randomBytes(2 << 20) }] });
  const reg = await node('swredir', swift.reader, {
    maintenance: { readonly: { enabled: true } },
    redirect: { disable: false },
  });
  const builder = await node('swredir', swift.builder);
  const work = await scratch('sluice-swift-');
  try {
    await pushImage(builder.url, 'lib/r', 'v1', img);
    const l = img.layers[0]!;
    const r = await fetch(`${reg.url}/v2/lib/r/blobs/${l.descriptor.digest}`, { redirect: 'manual' });
    assert.equal(r.status, 307);
    assert.ok(r.headers.get('location')!.startsWith(`${swift.endpoint}/reg/swredir/docker/registry/v2/blobs/`));
    const followed = await fetch(r.headers.get('location')!);
    assert.equal(followed.status, 200);
    assert.deepEqual(await bytesOf(followed), l.bytes);
    // A tampered URL is refused: the signature is really checked here.
    const bad = new URL(r.headers.get('location')!);
    bad.searchParams.set('X-Amz-Expires', '9999');
    assert.equal((await fetch(bad)).status, 403);
    if (hasTool('skopeo')) {
      await skopeoCopy(`docker://${reg.host}/lib/r:v1`, `dir:${join(work.dir, 'out')}`);
      assert.equal(digestOf(await readFile(join(work.dir, 'out', 'manifest.json'))), img.digest);
    }
  } finally {
    await reg.close();
    await builder.close();
    await work.cleanup();
  }
});

test('on Swift: no conditional writes (501) is detected; stale multipart uploads are listed and aborted', {
  skip,
}, async () => {
  const d = new S3Driver(swift.config('swmp', swift.builder) as never);
  const c = new S3Client({
    region: 'us-east-1',
    endpoint: swift.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: swift.builder.accesskey, secretAccessKey: swift.builder.secretkey },
  });
  try {
    assert.equal(await d.exclusiveCreate(), false);
    const key = 'swmp/docker/registry/v2/blobs/sha256/ab/abandoned/data';
    await c.send(new CreateMultipartUploadCommand({ Bucket: swift.bucket, Key: key }));
    const open = async () =>
      (await c.send(new ListMultipartUploadsCommand({ Bucket: swift.bucket, Prefix: 'swmp/' }))).Uploads ?? [];
    assert.equal((await open()).length, 1);
    // Begun after the cut-off: kept.
    assert.deepEqual(await d.abortStaleUploads(new Date(Date.now() - 3600_000)), []);
    assert.deepEqual(await d.abortStaleUploads(new Date(Date.now() + 1000)), [
      'docker/registry/v2/blobs/sha256/ab/abandoned/data',
    ]);
    assert.equal((await open()).length, 0);
  } finally {
    c.destroy();
    d.destroy();
  }
});
