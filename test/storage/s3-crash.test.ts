import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { digestOf } from '../../src/oci/digest.js';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { requestsBy, startS3Node, type S3Node } from '../helpers/s3-nodes.js';
import { scratch } from '../helpers/clients.js';
import { bytesOf, startSession, withDigest } from '../helpers/oci-http.js';

let s3: TestS3;
let work: { dir: string; cleanup: () => Promise<void> };
const nodes: S3Node[] = [];

before(async () => {
  s3 = await startS3('reg');
  work = await scratch('sluice-s3-crash-');
});

after(async () => {
  for (const n of nodes) await n.kill();
  await s3.close();
  await work.cleanup();
});

const ROOT = 'crash';
const MiB = 1 << 20;

async function startNode(key: string, storage?: Record<string, unknown>): Promise<S3Node> {
  const n = await startS3Node(s3, work.dir, { key, root: ROOT, ...(storage ? { storage } : {}) });
  nodes.push(n);
  return n;
}

/** The same upload URL on another node (sessions live in the bucket). */
function on(node: S3Node, location: string): string {
  const u = new URL(location);
  return new URL(u.pathname + u.search, node.url).toString();
}

function sessionPrefix(repo: string, location: string): string {
  const id = /\/uploads\/([0-9a-f-]{36})/.exec(location)![1]!;
  return `${ROOT}/docker/registry/v2/repositories/${repo}/_uploads/${id}/`;
}

function blobKey(d: string): string {
  const hex = d.slice('sha256:'.length);
  return `${ROOT}/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
}

/** Polls until `check` is true, boundedly. */
async function until(what: string, check: () => boolean | Promise<boolean>, tries = 400): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Sends a request whose fate the test decides (the node is killed under it); resolves however it ends. */
function sendAndForget(
  url: string,
  method: string,
  body?: Buffer,
  headers: Record<string, string> = {},
): { sent: Promise<void> } {
  const u = new URL(url);
  const sent = new Promise<void>((resolve) => {
    const req = request({ host: u.hostname, port: u.port, method, path: u.pathname + u.search, headers });
    req.on('error', () => resolve());
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve());
      res.on('error', () => resolve());
    });
    if (body) req.write(body);
    // A body promised longer than what is written keeps the request open, as a client mid-upload.
    if (!headers['content-length'] || Number(headers['content-length']) === (body?.length ?? 0)) req.end();
  });
  return { sent };
}

/** PATCHes `data` in order to `location`, returning the next location. */
async function patch(location: string, data: Buffer, from: number): Promise<string> {
  const r = await fetch(location, {
    method: 'PATCH',
    body: data,
    headers: { 'content-type': 'application/octet-stream', 'content-range': `${from}-${from + data.length - 1}` },
  });
  assert.equal(r.status, 202, await r.text());
  return new URL(r.headers.get('location')!, location).toString();
}

test('a node killed mid-PATCH leaves its flushed parts as the durable offset; another node continues and finishes', async () => {
  const data = randomBytes(14 * MiB);
  const a = await startNode('KILLPATCH');
  const b = await startNode('NODEB');
  const loc = await startSession(a.url, 'crash/patch');
  const prefix = sessionPrefix('crash/patch', loc);
  // 11 of a promised 14 MiB: one 5 MiB part is flushed to the bucket, the rest waits in the node's memory
  // (a writer keeps at least 5 MiB back, so that its last part is big enough to be copied at commit).
  const u = new URL(loc);
  sendAndForget(loc, 'PATCH', data.subarray(0, 11 * MiB), {
    'content-type': 'application/octet-stream',
    'content-length': String(data.length),
  });
  await until('the first part in the bucket', async () => (await s3.keys(`${prefix}data.parts/`)).length === 1);
  await a.kill();
  assert.equal(u.host, a.host);
  // B reports the offset the bucket holds (the flushed part, one chunk); nothing of the blob is visible.
  const status = await fetch(on(b, loc));
  assert.equal(status.status, 204);
  const durable = Number(/^0-(\d+)$/.exec(status.headers.get('range') ?? '')?.[1]) + 1;
  assert.ok(durable >= 5 * MiB && durable < 6 * MiB, `durable offset ${durable}`);
  assert.deepEqual(await s3.keys(blobKey(digestOf(data))), []);
  // The client goes on from there on B and finishes.
  const next = await patch(on(b, loc), data.subarray(durable), durable);
  const done = await fetch(withDigest(next, digestOf(data)), { method: 'PUT' });
  assert.equal(done.status, 201, await done.text());
  const g = await fetch(`${b.url}/v2/crash/patch/blobs/${digestOf(data)}`);
  assert.deepEqual(await bytesOf(g), data);
  assert.deepEqual(await s3.keys(prefix), []);
});

test('a node killed mid-commit leaves no blob; another node finishes the session, aborting the recorded multipart upload first', async () => {
  const data = randomBytes(12 * MiB);
  const digest = digestOf(data);
  const a = await startNode('KILLPUT');
  const b = await startNode('NODEB2');
  let loc = await startSession(a.url, 'crash/put');
  const prefix = sessionPrefix('crash/put', loc);
  loc = await patch(loc, data, 0);
  const since = s3.requests.length;
  const partTwo = () =>
    requestsBy(s3, 'KILLPUT', since).some((r) => r.method === 'PUT' && r.url.includes('partNumber=2'));
  sendAndForget(withDigest(loc, digest), 'PUT');
  // Killed while the second part of the blob's multipart upload is on its way.
  await until('the commit to send its second part', partTwo, 2000);
  await a.kill();
  const created = requestsBy(s3, 'KILLPUT', since).find((r) => r.method === 'POST' && r.url.includes('uploads'));
  assert.ok(created, 'the commit had opened a multipart upload');
  assert.deepEqual(await s3.keys(blobKey(digest)), [], 'no partial blob is visible');
  assert.deepEqual(
    await s3.keys(`${prefix}data.multipart`),
    [`${prefix}data.multipart`],
    'the open upload is recorded in the session',
  );
  // The client retries the PUT on B.
  const bSince = s3.requests.length;
  const done = await fetch(on(b, withDigest(loc, digest)), { method: 'PUT' });
  assert.equal(done.status, 201, await done.text());
  const crashedId = /uploadId=([^&]+)/.exec(
    requestsBy(s3, 'KILLPUT', since).find((r) => r.method === 'PUT' && r.url.includes('partNumber=2'))!.url,
  )![1];
  // B also opens (and aborts) an upload of its own to find out that s3rver has no UploadPartCopy.
  const aborts = requestsBy(s3, 'NODEB2', bSince).filter(
    (r) => r.method === 'DELETE' && r.url.includes(`uploadId=${crashedId}`),
  );
  assert.equal(aborts.length, 1, "the crashed commit's upload was aborted (s3rver refuses, which is tolerated)");
  const g = await fetch(`${b.url}/v2/crash/put/blobs/${digest}`);
  assert.equal(g.status, 200);
  assert.equal(digestOf(await bytesOf(g)), digest);
  assert.deepEqual(await s3.keys(prefix), []);
});

test('upload purging removes a crashed session whole: base, parts, start record, and aborts its recorded multipart upload', async () => {
  const data = randomBytes(11 * MiB);
  const a = await startNode('KILLPURGE');
  let loc = await startSession(a.url, 'crash/purge');
  const prefix = sessionPrefix('crash/purge', loc);
  loc = await patch(loc, data, 0);
  const since = s3.requests.length;
  sendAndForget(withDigest(loc, digestOf(data)), 'PUT');
  await until(
    'the commit to send its first part',
    () => requestsBy(s3, 'KILLPURGE', since).some((r) => r.method === 'PUT' && r.url.includes('partNumber=1')),
    2000,
  );
  await a.kill();
  const left = await s3.keys(prefix);
  assert.ok(
    left.some((k) => k.endsWith('/data.multipart')) &&
      left.some((k) => k.includes('/data.parts/')) &&
      left.some((k) => k.endsWith('/startedat')),
    left.join('\n'),
  );
  const recorded = requestsBy(s3, 'KILLPURGE', since).find((r) => r.method === 'POST' && r.url.includes('uploads'));
  assert.ok(recorded);
  await new Promise((r) => setTimeout(r, 1100));
  const cSince = s3.requests.length;
  await startNode('PURGER', {
    maintenance: { uploadpurging: { enabled: true, age: '1s', interval: '1s', dryrun: false } },
  });
  await until('the purge to empty the session', async () => (await s3.keys(prefix)).length === 0, 1000);
  // Listing multipart uploads is asked for after the sessions (s3rver answers NotImplemented, which is tolerated).
  await until(
    'the purge to list multipart uploads',
    () => requestsBy(s3, 'PURGER', cSince).some((r) => r.method === 'GET' && /[?&]uploads/.test(r.url)),
    1000,
  );
  const purger = requestsBy(s3, 'PURGER', cSince);
  assert.equal(
    purger.filter((r) => r.method === 'DELETE' && r.url.includes('uploadId=')).length,
    1,
    'the recorded upload was aborted',
  );
});
