import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startRegistry } from '../helpers/registry.js';
import { pushBlob } from '../helpers/images.js';
import { bytesOf, errorCode } from '../helpers/oci-http.js';
import { digestOf } from '../../src/oci/digest.js';

test('GET /v2/ answers 200 with the Docker-Distribution-API-Version header', async () => {
  const reg = await startRegistry();
  try {
    for (const path of ['/v2/', '/v2']) {
      const r = await fetch(`${reg.url}${path}`);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('docker-distribution-api-version'), 'registry/2.0');
      assert.deepEqual(await r.json(), {});
    }
    const h = await fetch(`${reg.url}/v2/`, { method: 'HEAD' });
    assert.equal(h.status, 200);
  } finally {
    await reg.close();
  }
});

test('blob HEAD and GET serve exact bytes with digest, length and type headers', async () => {
  const reg = await startRegistry();
  try {
    const data = randomBytes(100_000);
    const d = await pushBlob(reg.url, 'a/b', data);
    const h = await fetch(`${reg.url}/v2/a/b/blobs/${d}`, { method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal(h.headers.get('content-length'), String(data.length));
    assert.equal(h.headers.get('docker-content-digest'), d);
    assert.equal(h.headers.get('accept-ranges'), 'bytes');
    assert.equal((await h.arrayBuffer()).byteLength, 0);
    const g = await fetch(`${reg.url}/v2/a/b/blobs/${d}`);
    assert.equal(g.status, 200);
    assert.equal(g.headers.get('docker-content-digest'), d);
    assert.equal(g.headers.get('content-type'), 'application/octet-stream');
    assert.deepEqual(await bytesOf(g), data);
    // An empty blob is a blob too.
    const e = await pushBlob(reg.url, 'a/b', Buffer.alloc(0));
    const ge = await fetch(`${reg.url}/v2/a/b/blobs/${e}`);
    assert.equal(ge.status, 200);
    assert.equal((await bytesOf(ge)).length, 0);
  } finally {
    await reg.close();
  }
});

test('blob GET with Range answers 206 with Content-Range; 416 only for one well-formed unsatisfiable range; other Range headers are ignored (200)', async () => {
  const reg = await startRegistry();
  try {
    const data = randomBytes(1000);
    const d = await pushBlob(reg.url, 'r/x', data);
    const url = `${reg.url}/v2/r/x/blobs/${d}`;
    const cases: [string, number, number][] = [
      ['bytes=0-9', 0, 9],
      ['bytes=990-', 990, 999],
      ['bytes=-5', 995, 999],
      ['bytes=500-5000', 500, 999],
    ];
    for (const [range, start, end] of cases) {
      const r = await fetch(url, { headers: { range } });
      assert.equal(r.status, 206, range);
      assert.equal(r.headers.get('content-range'), `bytes ${start}-${end}/1000`);
      assert.equal(r.headers.get('content-length'), String(end - start + 1));
      assert.deepEqual(await bytesOf(r), data.subarray(start, end + 1));
    }
    for (const range of ['bytes=1000-', 'bytes=5000-6000', 'bytes=-0']) {
      const r = await fetch(url, { headers: { range } });
      assert.equal(r.status, 416, range);
      assert.equal(r.headers.get('content-range'), 'bytes */1000');
      assert.equal(await errorCode(r), 'RANGE_INVALID');
    }
    // RFC 9110 lets a server ignore Range; several ranges, another unit or a malformed one get the whole body.
    for (const range of [
      'bytes=10-5',
      'items=0-1',
      'bytes=0-1,5-6',
      'bytes=0-1, 1000-2000',
      'bytes=abc',
      'bytes=-',
      'bytes 0-1',
    ]) {
      const r = await fetch(url, { headers: { range } });
      assert.equal(r.status, 200, range);
      assert.equal(r.headers.get('content-range'), null, range);
      assert.equal(r.headers.get('content-length'), '1000', range);
      assert.deepEqual(await bytesOf(r), data, range);
    }
  } finally {
    await reg.close();
  }
});

test('blob GET and HEAD answer 304 to an If-None-Match naming the ETag (strong, weak, bare digest, list, *), before any Range', async () => {
  const reg = await startRegistry();
  try {
    const data = randomBytes(2000);
    const d = await pushBlob(reg.url, 'inm/x', data);
    const url = `${reg.url}/v2/inm/x/blobs/${d}`;
    const first = await fetch(url);
    assert.equal(first.headers.get('etag'), `"${d}"`);
    await first.arrayBuffer();
    const hits = [`"${d}"`, `W/"${d}"`, d, '*', `"sha256:${'0'.repeat(64)}", W/"${d}"`];
    for (const method of ['GET', 'HEAD']) {
      for (const inm of hits) {
        const r = await fetch(url, { method, headers: { 'if-none-match': inm, range: 'bytes=0-9' } });
        assert.equal(r.status, 304, `${method} ${inm}`);
        assert.equal(r.headers.get('etag'), `"${d}"`);
        assert.equal(r.headers.get('docker-content-digest'), d);
        assert.equal((await bytesOf(r)).length, 0);
      }
      const miss = await fetch(url, { method, headers: { 'if-none-match': `"sha256:${'0'.repeat(64)}"` } });
      assert.equal(miss.status, 200, method);
      if (method === 'GET') assert.deepEqual(await bytesOf(miss), data);
    }
    // A blob the repository does not have is still a 404, whatever If-None-Match says.
    const absent = await fetch(`${reg.url}/v2/inm/x/blobs/${digestOf('absent')}`, {
      headers: { 'if-none-match': '*' },
    });
    assert.equal(absent.status, 404);
    assert.equal(await errorCode(absent), 'BLOB_UNKNOWN');
  } finally {
    await reg.close();
  }
});

test('blobs are visible only in the repositories they were pushed or mounted to', async () => {
  const reg = await startRegistry();
  try {
    const d = await pushBlob(reg.url, 'one', Buffer.from('only in one'));
    const r = await fetch(`${reg.url}/v2/two/blobs/${d}`);
    assert.equal(r.status, 404);
    assert.equal(await errorCode(r), 'BLOB_UNKNOWN');
    const h = await fetch(`${reg.url}/v2/two/blobs/${d}`, { method: 'HEAD' });
    assert.equal(h.status, 404);
    const unknown = await fetch(`${reg.url}/v2/one/blobs/${digestOf('never pushed')}`);
    assert.equal(unknown.status, 404);
    assert.equal(await errorCode(unknown), 'BLOB_UNKNOWN');
    const bad = await fetch(`${reg.url}/v2/one/blobs/sha256:xyz`);
    assert.equal(bad.status, 400);
    assert.equal(await errorCode(bad), 'DIGEST_INVALID');
    const md5 = await fetch(`${reg.url}/v2/one/blobs/md5:d41d8cd98f00b204e9800998ecf8427e`);
    assert.equal(md5.status, 400);
    assert.equal(await errorCode(md5), 'DIGEST_INVALID');
  } finally {
    await reg.close();
  }
});

test('blob DELETE unlinks the blob from the repository (202), then 404', async () => {
  const reg = await startRegistry();
  try {
    const d = await pushBlob(reg.url, 'del/me', Buffer.from('delete me'));
    await pushBlob(reg.url, 'del/other', Buffer.from('delete me'));
    const r = await fetch(`${reg.url}/v2/del/me/blobs/${d}`, { method: 'DELETE' });
    assert.equal(r.status, 202);
    assert.equal((await fetch(`${reg.url}/v2/del/me/blobs/${d}`)).status, 404);
    const again = await fetch(`${reg.url}/v2/del/me/blobs/${d}`, { method: 'DELETE' });
    assert.equal(again.status, 404);
    assert.equal(await errorCode(again), 'BLOB_UNKNOWN');
    // Another repository that links the same bytes still serves them.
    const other = await fetch(`${reg.url}/v2/del/other/blobs/${d}`);
    assert.equal(other.status, 200);
    assert.equal((await bytesOf(other)).toString(), 'delete me');
  } finally {
    await reg.close();
  }
});

test('blob DELETE is UNSUPPORTED (405) when storage.delete.enabled is false', async () => {
  const reg = await startRegistry({ storage: { delete: { enabled: false } } });
  try {
    const d = await pushBlob(reg.url, 'keep', Buffer.from('keep me'));
    const r = await fetch(`${reg.url}/v2/keep/blobs/${d}`, { method: 'DELETE' });
    assert.equal(r.status, 405);
    assert.equal(await errorCode(r), 'UNSUPPORTED');
    const g = await fetch(`${reg.url}/v2/keep/blobs/${d}`);
    assert.equal(g.status, 200);
    assert.equal((await bytesOf(g)).toString(), 'keep me');
  } finally {
    await reg.close();
  }
});

test('methods an endpoint does not support answer UNSUPPORTED (405) in the OCI format', async () => {
  const reg = await startRegistry();
  try {
    const d = await pushBlob(reg.url, 'm/x', Buffer.from('x'));
    for (const [method, path] of [
      ['PUT', `/v2/m/x/blobs/${d}`],
      ['DELETE', '/v2/_catalog'],
      ['POST', '/v2/m/x/tags/list'],
      ['PUT', `/v2/m/x/referrers/${d}`],
      ['PATCH', '/v2/m/x/blobs/uploads/'],
    ] as const) {
      const r = await fetch(`${reg.url}${path}`, {
        method,
        ...(method === 'PUT' || method === 'PATCH' || method === 'POST' ? { body: 'x' } : {}),
      });
      assert.equal(r.status, 405, `${method} ${path}`);
      assert.equal(await errorCode(r), 'UNSUPPORTED');
      assert.equal(r.headers.get('docker-distribution-api-version'), 'registry/2.0');
    }
    const g = await fetch(`${reg.url}/v2/m/x/blobs/${d}`);
    assert.equal((await bytesOf(g)).toString(), 'x');
  } finally {
    await reg.close();
  }
});
