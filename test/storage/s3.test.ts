import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { digestOf } from '../../src/oci/digest.js';
import { S3Driver } from '../../src/storage/s3.js';
import { validateConfig } from '../../src/config/load.js';
import { driverFor } from '../../src/registry/server.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { inspectRaw, scratch, skopeoCopy, startDistribution } from '../helpers/clients.js';
import { needTools } from '../helpers/tools.js';
import { makeImage, pushImage, writeOciLayout } from '../helpers/images.js';
import { assertIntact, bytesOf, startSession, withDigest } from '../helpers/oci-http.js';

let s3: TestS3;
let endpoint: string;

before(async () => {
  s3 = await startS3('reg');
  endpoint = s3.endpoint;
});

after(() => s3.close());

function s3Config(root: string): Record<string, unknown> {
  return { storage: { filesystem: undefined, s3: s3.config(root) } };
}

const keys = (prefix: string): Promise<string[]> => s3.keys(prefix);

async function withRegistry<T>(root: string, fn: (r: TestRegistry) => Promise<T>): Promise<T> {
  const reg = await startRegistry(s3Config(root));
  try {
    return await fn(reg);
  } finally {
    await reg.close();
  }
}

test('storage.s3 makes the registry store in the bucket under Distribution keys; a small image pushes and pulls', async () => {
  await withRegistry('/small', async (reg) => {
    assert.equal(reg.ctx.driver.name, 's3');
    const img = await makeImage({ label: 'small' });
    await pushImage(reg.url, 'lib/small', 'v1', img);
    await assertIntact(reg.url, 'lib/small', 'v1', img);
    const stored = await keys('small/');
    const hex = img.layers[0]!.descriptor.digest.slice('sha256:'.length);
    assert.ok(
      stored.includes(`small/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`),
      stored.join('\n'),
    );
    assert.ok(
      stored.includes('small/docker/registry/v2/repositories/lib/small/_manifests/tags/v1/current/link'),
      stored.join('\n'),
    );
    assert.ok(
      stored.includes(`small/docker/registry/v2/repositories/lib/small/_layers/sha256/${hex}/link`),
      stored.join('\n'),
    );
    // Finished sessions leave nothing behind, parts included.
    assert.deepEqual(
      stored.filter((k) => k.includes('_uploads')),
      [],
    );
  });
});

test('a multi-layer 20 MiB image pushes and pulls byte for byte; big blobs are assembled by multipart upload', async () => {
  const img = await makeImage({
    label: 'big',
    layers: [{ a: randomBytes(12 << 20) }, { b: randomBytes(8 << 20) }, { c: 'small' }],
  });
  await withRegistry('big', async (reg) => {
    const before = s3.requests.length;
    await pushImage(reg.url, 'big', 'v1', img);
    const sent = s3.requests.slice(before).map((r) => `${r.method} ${r.url}`);
    assert.ok(
      sent.some((r) => r.startsWith('POST ') && r.includes('uploads')),
      'a multipart upload was created',
    );
    assert.ok(
      sent.some((r) => r.startsWith('PUT ') && r.includes('partNumber=3')),
      'the 12 MiB layer went in 5 MiB parts',
    );
    await assertIntact(reg.url, 'big', 'v1', img);
    // A range of a big blob comes back exact.
    const l = img.layers[0]!;
    const r = await fetch(`${reg.url}/v2/big/blobs/${l.descriptor.digest}`, {
      headers: { range: 'bytes=5242000-5243999' },
    });
    assert.equal(r.status, 206);
    assert.deepEqual(await bytesOf(r), l.bytes.subarray(5242000, 5244000));
  });
});

test('a chunked upload in several PATCHes is stored as parts, reports offsets, and is continued and finished on a second registry', async () => {
  const data = randomBytes((6 << 20) + 12345);
  const cuts = [0, 1000, 3 << 20, (6 << 20) + 1, data.length];
  await withRegistry('chunks', async (a) => {
    await withRegistry('chunks', async (b) => {
      let loc = await startSession(a.url, 'chunked');
      for (let i = 0; i < cuts.length - 1; i++) {
        const piece = data.subarray(cuts[i], cuts[i + 1]);
        // Alternate registries: the session's bytes are in the bucket, not in a process.
        const target = new URL(new URL(loc).pathname + new URL(loc).search, i % 2 ? b.url : a.url).toString();
        const r = await fetch(target, {
          method: 'PATCH',
          body: piece,
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${cuts[i]}-${cuts[i + 1]! - 1}` },
        });
        assert.equal(r.status, 202, await r.text());
        assert.equal(r.headers.get('range'), `0-${cuts[i + 1]! - 1}`);
        loc = new URL(r.headers.get('location')!, target).toString();
      }
      const parts = await keys('chunks/docker/registry/v2/repositories/chunked/_uploads/');
      assert.ok(parts.filter((k) => k.includes('/data.parts/')).length >= 4, parts.join('\n'));
      // A chunk that does not start where the stored bytes end is refused.
      const bad = await fetch(loc, {
        method: 'PATCH',
        body: Buffer.from('x'),
        headers: { 'content-range': '5-5', 'content-type': 'application/octet-stream' },
      });
      assert.equal(bad.status, 416);
      // B never saw the first chunk's hash: it rebuilds it from the joined parts.
      const onB = new URL(new URL(loc).pathname + new URL(loc).search, b.url).toString();
      const done = await fetch(withDigest(onB, digestOf(data)), { method: 'PUT' });
      assert.equal(done.status, 201, await done.text());
      const g = await fetch(`${a.url}/v2/chunked/blobs/${digestOf(data)}`);
      assert.equal(g.status, 200);
      assert.deepEqual(await bytesOf(g), data);
      assert.deepEqual(
        (await keys('chunks/')).filter((k) => k.includes('_uploads')),
        [],
      );
    });
  });
});

test('tags list, catalog and delete on S3; two registries on one bucket: what A pushes B serves', async () => {
  await withRegistry('shared', async (a) => {
    const one = await makeImage({ label: 'one' });
    const two = await makeImage({ label: 'two' });
    await pushImage(a.url, 'team/app', 'v1', one);
    await pushImage(a.url, 'team/app', 'v2', two);
    await pushImage(a.url, 'other', 'latest', one);
    await withRegistry('shared', async (b) => {
      await assertIntact(b.url, 'team/app', 'v1', one);
      await assertIntact(b.url, 'other', 'latest', one);
      const tags = await (await fetch(`${b.url}/v2/team/app/tags/list`)).json();
      assert.deepEqual(tags, { name: 'team/app', tags: ['v1', 'v2'] });
      const cat = await (await fetch(`${b.url}/v2/_catalog`)).json();
      assert.deepEqual(cat, { repositories: ['other', 'team/app'] });
      // Delete on B; A sees it gone.
      const d = await fetch(`${b.url}/v2/team/app/manifests/${two.digest}`, { method: 'DELETE' });
      assert.equal(d.status, 202);
      assert.equal((await fetch(`${a.url}/v2/team/app/manifests/v2`)).status, 404);
      assert.equal((await fetch(`${a.url}/v2/team/app/manifests/${two.digest}`)).status, 404);
      assert.deepEqual(await (await fetch(`${a.url}/v2/team/app/tags/list`)).json(), {
        name: 'team/app',
        tags: ['v1'],
      });
      await assertIntact(a.url, 'team/app', 'v1', one);
    });
  });
});

test('the driver: absent objects, directories, listing, move and prefix delete', async () => {
  const d = new S3Driver({
    region: 'us-east-1',
    regionendpoint: endpoint,
    bucket: 'reg',
    rootdirectory: 'unit',
    accesskey: 'S3RVER',
    secretkey: 'S3RVER',
  });
  try {
    assert.equal(await d.getContent('a/b'), null);
    assert.equal(await d.stat('a'), null);
    assert.deepEqual(await d.list('a'), []);
    await d.putContent('a/b/c', Buffer.from('one'));
    await d.putContent('a/bb', Buffer.from('two'));
    assert.deepEqual((await d.stat('a/b'))?.isDirectory, true);
    assert.equal((await d.stat('a/b/c'))?.size, 3);
    assert.deepEqual((await d.list('a')).sort(), ['b', 'bb']);
    await d.move('a/bb', 'x/y');
    assert.equal(await d.getContent('a/bb'), null);
    assert.equal((await d.getContent('x/y'))?.toString(), 'two');
    // Deleting `a/b` must not touch `a/bb`-like siblings that share its prefix.
    await d.putContent('a/bc', Buffer.from('keep'));
    await d.delete('a/b');
    assert.equal(await d.stat('a/b'), null);
    assert.equal((await d.getContent('a/bc'))?.toString(), 'keep');
    await d.delete('nothing/here');
  } finally {
    d.destroy();
  }
});

test("config: storage.s3 takes Distribution's keys, picks the S3 driver, and cannot be combined with storage.filesystem", () => {
  const s3 = {
    region: 'us-east-1',
    bucket: 'reg',
    regionendpoint: '127.0.0.1:9',
    secure: false,
    v4auth: true,
    chunksize: 5 << 20,
    storageclass: 'NONE',
    encrypt: false,
    forcepathstyle: true,
    rootdirectory: '/r',
  };
  const { config } = validateConfig({ storage: { s3 } });
  const d = driverFor(config);
  assert.equal(d.name, 's3');
  assert.equal(d.location, 'storage.s3: s3://reg/r');
  (d as S3Driver).destroy();
  assert.throws(
    () => validateConfig({ storage: { s3, filesystem: { rootdirectory: '/x' } } }),
    /exactly one of storage\.filesystem and storage\.s3/,
  );
  assert.throws(() => validateConfig({ storage: { s3: { ...s3, chunksize: 1024 } } }), /storage\.s3\.chunksize/);
  assert.throws(() => validateConfig({ storage: { s3: { region: 'us-east-1' } } }), /storage\.s3\.bucket/);
});

test('skopeo pushes to Sluice on S3 and pulls back; Distribution 2.8 on the same bucket serves what Sluice wrote', async (t) => {
  if (!needTools(t, 'skopeo', 'docker-registry')) return;
  const img = await makeImage({ label: 'skopeo', layers: [{ a: randomBytes(3 << 20) }, { b: 'two' }] });
  const work = await scratch('sluice-s3-skopeo-');
  try {
    await writeOciLayout(join(work.dir, 'src'), [{ tag: 'v1', image: img }]);
    await withRegistry('dist', async (reg) => {
      await skopeoCopy(`oci:${join(work.dir, 'src')}:v1`, `docker://${reg.host}/lib/app:v1`);
      await assertIntact(reg.url, 'lib/app', 'v1', img);
      assert.deepEqual(await inspectRaw(`docker://${reg.host}/lib/app:v1`), img.manifest);
    });
    const dist = await startDistribution({ s3: s3.config('/dist') });
    try {
      await assertIntact(dist.url, 'lib/app', 'v1', img);
      assert.deepEqual(await inspectRaw(`docker://${dist.host}/lib/app:v1`), img.manifest);
    } finally {
      await dist.stop();
    }
  } finally {
    await work.cleanup();
  }
});

test('a PATCH cut off after a part was flushed leaves the session at its old offset, with no stray part', async () => {
  await withRegistry('cut', async (reg) => {
    const loc = await startSession(reg.url, 'cut');
    const first = randomBytes(1000);
    const ok = await fetch(loc, {
      method: 'PATCH',
      body: first,
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(ok.status, 202);
    // Promise 8 MiB, send 6 (more than one 5 MiB part), then drop the connection.
    const u = new URL(loc);
    await new Promise<void>((resolve) => {
      const req = request({
        host: u.hostname,
        port: u.port,
        method: 'PATCH',
        path: u.pathname + u.search,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(8 << 20) },
      });
      req.on('error', () => resolve());
      req.on('response', (res) => {
        res.resume();
        resolve();
      });
      req.write(randomBytes(6 << 20), () =>
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 1500),
      );
    });
    const uploads = 'cut/docker/registry/v2/repositories/cut/_uploads/';
    let status = 0;
    let range: string | null = null;
    let stored: string[] = [];
    // The server notices the cut and cancels asynchronously: wait for it, boundedly.
    for (let i = 0; i < 50; i++) {
      const r = await fetch(loc);
      status = r.status;
      range = r.headers.get('range');
      stored = (await keys(uploads)).filter((k) => k.includes('/data.parts/'));
      if (range === '0-999' && stored.length === 1) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(status, 204);
    assert.equal(range, '0-999');
    assert.equal(stored.length, 1, stored.join('\n'));
    const rest = randomBytes(10);
    const done = await fetch(withDigest(loc, digestOf(Buffer.concat([first, rest]))), {
      method: 'PUT',
      body: rest,
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(done.status, 201, await done.text());
  });
});
