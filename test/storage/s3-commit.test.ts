// How an upload's commit joins its part objects: by copies on the server where it can (UploadPartCopy,
// CopyObject), so that the blob's bytes do not cross the node a second time; by reading them back where not.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { digestOf } from '../../src/oci/digest.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { bytesOf, startSession, withDigest } from '../helpers/oci-http.js';

const MiB = 1024 * 1024;
let copying: TestS3;
let plain: TestS3;

before(async () => {
  // s3rver with the bench's harness in front, which answers UploadPartCopy as AWS, MinIO, Ceph and Swift do.
  copying = await startS3('reg', { multipart: true });
  plain = await startS3('reg');
});

after(async () => {
  await copying.close();
  await plain.close();
});

async function withRegistry<T>(s3: TestS3, root: string, fn: (r: TestRegistry) => Promise<T>): Promise<T> {
  const reg = await startRegistry({ storage: { filesystem: undefined, s3: s3.config(root) } });
  try {
    return await fn(reg);
  } finally {
    await reg.close();
  }
}

/** Pushes `data` in PATCHes of `patchBytes`, then the PUT; returns the S3 requests the PUT caused. */
async function pushInPatches(
  s3: TestS3,
  url: string,
  repo: string,
  data: Buffer,
  patchBytes: number,
): Promise<{ method: string; url: string }[]> {
  let loc = await startSession(url, repo);
  for (let from = 0; from < data.length; from += patchBytes) {
    const piece = data.subarray(from, from + patchBytes);
    const r = await fetch(loc, {
      method: 'PATCH',
      body: piece,
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${from}-${from + piece.length - 1}` },
    });
    assert.equal(r.status, 202, await r.text());
    loc = new URL(r.headers.get('location')!, loc).toString();
  }
  const since = s3.requests.length;
  const put = await fetch(withDigest(loc, digestOf(data)), { method: 'PUT' });
  assert.equal(put.status, 201, await put.text());
  return s3.requests.slice(since);
}

async function assertPulls(url: string, repo: string, data: Buffer): Promise<void> {
  const g = await fetch(`${url}/v2/${repo}/blobs/${digestOf(data)}`);
  assert.equal(g.status, 200);
  assert.equal(digestOf(await bytesOf(g)), digestOf(data));
}

const readsParts = (reqs: { method: string; url: string }[]) =>
  reqs.filter((r) => r.method === 'GET' && r.url.includes('/data.parts/'));

test('a commit of several parts copies them on a server with UploadPartCopy: no part is read back', async () => {
  await withRegistry(copying, '/copyparts', async (reg) => {
    // Three part objects of 6 MiB (each PATCH flushes its own) and a last one of 1 MiB.
    const data = randomBytes(19 * MiB);
    const reqs = await pushInPatches(copying, reg.url, 'c/parts', data, 6 * MiB);
    assert.deepEqual(readsParts(reqs), [], 'the commit read part objects back');
    const parts = reqs.filter((r) => r.method === 'PUT' && /[?&]partNumber=/.test(r.url));
    assert.equal(parts.length, 4, 'one UploadPartCopy per part object');
    await assertPulls(reg.url, 'c/parts', data);
    // A second commit in the same process copies again (the answer is kept, not probed per commit).
    const more = randomBytes(11 * MiB);
    assert.deepEqual(readsParts(await pushInPatches(copying, reg.url, 'c/parts', more, 6 * MiB)), []);
    await assertPulls(reg.url, 'c/parts', more);
  });
});

test('a commit of one part object is one CopyObject, on any server', async () => {
  await withRegistry(plain, '/onepart', async (reg) => {
    // Under chunksize (5 MiB) plus the 5 MiB a writer keeps back: one part object.
    const data = randomBytes(9 * MiB);
    const reqs = await pushInPatches(plain, reg.url, 'c/one', data, 9 * MiB);
    assert.deepEqual(readsParts(reqs), [], 'the commit read its part object back');
    assert.deepEqual(
      reqs.filter((r) => /[?&](uploads|uploadId=)/.test(r.url)),
      [],
      'no multipart upload for a single part',
    );
    await assertPulls(reg.url, 'c/one', data);
  });
});

test('without UploadPartCopy (plain s3rver) the commit reads the parts back and still completes', async () => {
  await withRegistry(plain, '/resend', async (reg) => {
    const data = randomBytes(13 * MiB);
    const reqs = await pushInPatches(plain, reg.url, 'c/resend', data, 6 * MiB);
    assert.ok(readsParts(reqs).length > 0, 'the parts were read back');
    await assertPulls(reg.url, 'c/resend', data);
    assert.deepEqual(
      await plain.keys('resend/docker/registry/v2/repositories/c/resend/_uploads/'),
      [],
      'the session is gone',
    );
  });
});
