import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startRegistry } from '../helpers/registry.js';
import { pushBlob } from '../helpers/images.js';
import { bytesOf, errorCode, startSession, withDigest } from '../helpers/oci-http.js';
import { digestOf } from '../../src/oci/digest.js';

async function getBlob(url: string, repo: string, d: string): Promise<Response> {
  return fetch(`${url}/v2/${repo}/blobs/${d}`);
}

test('monolithic POST ?digest= creates the blob (201, Location, Docker-Content-Digest)', async () => {
  const reg = await startRegistry();
  try {
    const data = randomBytes(5000);
    const d = digestOf(data);
    const r = await fetch(`${reg.url}/v2/mono/blobs/uploads/?digest=${d}`, {
      method: 'POST',
      body: data,
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('docker-content-digest'), d);
    assert.equal(r.headers.get('location'), `/v2/mono/blobs/${d}`);
    assert.deepEqual(await bytesOf(await getBlob(reg.url, 'mono', d)), data);
  } finally {
    await reg.close();
  }
});

test('POST then PUT with the whole body', async () => {
  const reg = await startRegistry();
  try {
    const data = randomBytes(3000);
    const d = digestOf(data);
    const post = await fetch(`${reg.url}/v2/two/step/blobs/uploads/`, { method: 'POST' });
    assert.equal(post.status, 202);
    const loc = post.headers.get('location')!;
    assert.match(loc, /^\/v2\/two\/step\/blobs\/uploads\/[0-9a-f-]{36}$/);
    assert.equal(post.headers.get('docker-upload-uuid'), loc.split('/').pop());
    assert.equal(post.headers.get('range'), '0-0');
    const put = await fetch(withDigest(new URL(loc, reg.url).toString(), d), {
      method: 'PUT',
      body: data,
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(put.status, 201);
    assert.equal(put.headers.get('docker-content-digest'), d);
    assert.deepEqual(await bytesOf(await getBlob(reg.url, 'two/step', d)), data);
    // The session is gone once the blob exists.
    const status = await fetch(new URL(loc, reg.url));
    assert.equal(status.status, 404);
    assert.equal(await errorCode(status), 'BLOB_UPLOAD_UNKNOWN');
  } finally {
    await reg.close();
  }
});

test('chunked PATCH with Content-Range, upload status, and a final PUT carrying the last chunk', async () => {
  const reg = await startRegistry();
  try {
    const data = randomBytes(10_000);
    const d = digestOf(data);
    let loc = await startSession(reg.url, 'chunky');
    const id = loc.split('/').pop()!;
    for (const [start, end] of [
      [0, 3999],
      [4000, 7999],
    ] as const) {
      const r = await fetch(loc, {
        method: 'PATCH',
        body: data.subarray(start, end + 1),
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${end}` },
      });
      assert.equal(r.status, 202);
      assert.equal(r.headers.get('range'), `0-${end}`);
      assert.equal(r.headers.get('docker-upload-uuid'), id);
      loc = new URL(r.headers.get('location')!, reg.url).toString();
    }
    const st = await fetch(loc);
    assert.equal(st.status, 204);
    assert.equal(st.headers.get('range'), '0-7999');
    assert.equal(st.headers.get('docker-upload-uuid'), id);
    assert.ok(st.headers.get('location')!.endsWith(id));
    // Not visible before the PUT.
    assert.equal((await getBlob(reg.url, 'chunky', d)).status, 404);
    const put = await fetch(withDigest(loc, d), {
      method: 'PUT',
      body: data.subarray(8000),
      headers: { 'content-type': 'application/octet-stream', 'content-range': '8000-9999' },
    });
    assert.equal(put.status, 201);
    assert.deepEqual(await bytesOf(await getBlob(reg.url, 'chunky', d)), data);
  } finally {
    await reg.close();
  }
});

test('chunked PATCH without Content-Range (streamed), then PUT without a body', async () => {
  const reg = await startRegistry();
  try {
    const data = randomBytes(200_000);
    const d = digestOf(data);
    const loc = await startSession(reg.url, 'stream');
    // A streamed body: no Content-Length, chunked transfer encoding.
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < data.length; i += 65536) c.enqueue(data.subarray(i, i + 65536));
        c.close();
      },
    });
    const p = await fetch(loc, { method: 'PATCH', body, duplex: 'half' } as RequestInit);
    assert.equal(p.status, 202);
    assert.equal(p.headers.get('range'), `0-${data.length - 1}`);
    const p2 = await fetch(loc, { method: 'PATCH', body: Buffer.from('tail') });
    assert.equal(p2.status, 202);
    assert.equal(p2.headers.get('range'), `0-${data.length + 3}`);
    const all = Buffer.concat([data, Buffer.from('tail')]);
    const put = await fetch(withDigest(loc, digestOf(all)), { method: 'PUT' });
    assert.equal(put.status, 201);
    assert.deepEqual(await bytesOf(await getBlob(reg.url, 'stream', digestOf(all))), all);
    assert.equal((await getBlob(reg.url, 'stream', d)).status, 404);
  } finally {
    await reg.close();
  }
});

test('PATCH with a Content-Range that does not continue the upload is 416 and changes nothing', async () => {
  const reg = await startRegistry();
  try {
    const loc = await startSession(reg.url, 'ranges');
    const first = await fetch(loc, { method: 'PATCH', body: Buffer.from('abcd'), headers: { 'content-range': '0-3' } });
    assert.equal(first.status, 202);
    for (const range of ['0-3', '10-13', '4-9', 'garbage', '7-4']) {
      const r = await fetch(loc, { method: 'PATCH', body: Buffer.from('efgh'), headers: { 'content-range': range } });
      assert.equal(r.status, 416, range);
      assert.equal(await errorCode(r), 'RANGE_INVALID');
      const st = await fetch(loc);
      assert.equal(st.headers.get('range'), '0-3', `offset after ${range}`);
    }
    const ok = await fetch(loc, { method: 'PATCH', body: Buffer.from('efgh'), headers: { 'content-range': '4-7' } });
    assert.equal(ok.status, 202);
    const put = await fetch(withDigest(loc, digestOf('abcdefgh')), { method: 'PUT' });
    assert.equal(put.status, 201);
  } finally {
    await reg.close();
  }
});

test('DELETE cancels an upload session; unknown sessions are BLOB_UPLOAD_UNKNOWN', async () => {
  const reg = await startRegistry();
  try {
    const loc = await startSession(reg.url, 'cancel');
    await fetch(loc, { method: 'PATCH', body: Buffer.from('partial') });
    const del = await fetch(loc, { method: 'DELETE' });
    assert.equal(del.status, 204);
    for (const method of ['GET', 'PATCH', 'DELETE']) {
      const r = await fetch(loc, { method, ...(method === 'PATCH' ? { body: Buffer.from('x') } : {}) });
      assert.equal(r.status, 404, method);
      assert.equal(await errorCode(r), 'BLOB_UPLOAD_UNKNOWN');
    }
    const put = await fetch(withDigest(loc, digestOf('partial')), { method: 'PUT' });
    assert.equal(put.status, 404);
    assert.equal(await errorCode(put), 'BLOB_UPLOAD_UNKNOWN');
    const notUuid = await fetch(`${reg.url}/v2/cancel/blobs/uploads/not-a-session`);
    assert.equal(notUuid.status, 404);
    assert.equal(await errorCode(notUuid), 'BLOB_UPLOAD_UNKNOWN');
    // Nothing of the session remains in storage.
    assert.deepEqual(await reg.files('docker/registry/v2/repositories/cancel/_uploads'), []);
  } finally {
    await reg.close();
  }
});

test('PUT with the wrong digest is DIGEST_INVALID and the blob never becomes visible', async () => {
  const reg = await startRegistry();
  try {
    const data = Buffer.from('the real content');
    const wrong = digestOf('something else');
    const mono = await fetch(`${reg.url}/v2/wrong/blobs/uploads/?digest=${wrong}`, { method: 'POST', body: data });
    assert.equal(mono.status, 400);
    assert.equal(await errorCode(mono), 'DIGEST_INVALID');
    const loc = await startSession(reg.url, 'wrong');
    const put = await fetch(withDigest(loc, wrong), { method: 'PUT', body: data });
    assert.equal(put.status, 400);
    assert.equal(await errorCode(put), 'DIGEST_INVALID');
    for (const d of [wrong, digestOf(data)]) assert.equal((await getBlob(reg.url, 'wrong', d)).status, 404);
    assert.deepEqual(await reg.files('docker/registry/v2/blobs'), []);
    const noDigest = await fetch(loc, { method: 'PUT' });
    assert.equal(noDigest.status, 400);
    assert.equal(await errorCode(noDigest), 'DIGEST_INVALID');
  } finally {
    await reg.close();
  }
});

test('cross-repository mount: ?mount=&from= links (201); a source without the blob falls back to a session (202)', async () => {
  const reg = await startRegistry();
  try {
    const data = Buffer.from('mount me');
    const d = await pushBlob(reg.url, 'src/repo', data);
    const m = await fetch(`${reg.url}/v2/dst/repo/blobs/uploads/?mount=${d}&from=src/repo`, { method: 'POST' });
    assert.equal(m.status, 201);
    assert.equal(m.headers.get('location'), `/v2/dst/repo/blobs/${d}`);
    assert.equal(m.headers.get('docker-content-digest'), d);
    assert.deepEqual(await bytesOf(await getBlob(reg.url, 'dst/repo', d)), data);

    const other = digestOf('not there');
    const fb = await fetch(`${reg.url}/v2/dst/repo/blobs/uploads/?mount=${other}&from=src/repo`, { method: 'POST' });
    assert.equal(fb.status, 202);
    assert.match(fb.headers.get('location')!, /\/v2\/dst\/repo\/blobs\/uploads\/[0-9a-f-]{36}$/);
    assert.ok(fb.headers.get('docker-upload-uuid'));

    // A blob stored for another repository but not linked into `from` is not mounted from it.
    const elsewhere = await pushBlob(reg.url, 'third', Buffer.from('third only'));
    const nf = await fetch(`${reg.url}/v2/dst/repo/blobs/uploads/?mount=${elsewhere}&from=src/repo`, {
      method: 'POST',
    });
    assert.equal(nf.status, 202);
    assert.equal((await getBlob(reg.url, 'dst/repo', elsewhere)).status, 404);

    // Without `from` (OCI 1.1: the registry may mount any blob it has) and with no access control.
    const noFrom = await fetch(`${reg.url}/v2/fourth/blobs/uploads/?mount=${elsewhere}`, { method: 'POST' });
    assert.equal(noFrom.status, 201);
    assert.equal((await bytesOf(await getBlob(reg.url, 'fourth', elsewhere))).toString(), 'third only');

    const bad = await fetch(`${reg.url}/v2/dst/repo/blobs/uploads/?mount=nope&from=src/repo`, { method: 'POST' });
    assert.equal(bad.status, 400);
    assert.equal(await errorCode(bad), 'DIGEST_INVALID');
  } finally {
    await reg.close();
  }
});

test('an upload session survives a restart of the server on the same root', async () => {
  const first = await startRegistry();
  const root = first.root;
  let second: Awaited<ReturnType<typeof startRegistry>> | undefined;
  try {
    const data = randomBytes(50_000);
    const d = digestOf(data);
    const loc = await startSession(first.url, 'restart/me');
    const path = new URL(loc).pathname;
    const p = await fetch(loc, {
      method: 'PATCH',
      body: data.subarray(0, 20_000),
      headers: { 'content-range': '0-19999' },
    });
    assert.equal(p.status, 202);
    await first.app.close();

    second = await startRegistry({}, root);
    const st = await fetch(`${second.url}${path}`);
    assert.equal(st.status, 204);
    assert.equal(st.headers.get('range'), '0-19999');
    const p2 = await fetch(`${second.url}${path}`, {
      method: 'PATCH',
      body: data.subarray(20_000),
      headers: { 'content-range': '20000-49999' },
    });
    assert.equal(p2.status, 202);
    const put = await fetch(`${second.url}${path}?digest=${d}`, { method: 'PUT' });
    assert.equal(put.status, 201);
    assert.deepEqual(await bytesOf(await getBlob(second.url, 'restart/me', d)), data);
  } finally {
    await second?.close();
    // Removes the storage too, now that the second registry is done with it.
    await first.close().catch(() => undefined);
  }
});

test('uploads into a read-only registry are UNSUPPORTED', async () => {
  const reg = await startRegistry({ storage: { maintenance: { readonly: { enabled: true } } } });
  try {
    const r = await fetch(`${reg.url}/v2/ro/blobs/uploads/`, { method: 'POST' });
    assert.equal(r.status, 405);
    assert.equal(await errorCode(r), 'UNSUPPORTED');
  } finally {
    await reg.close();
  }
});

test('upload purging removes sessions older than storage.maintenance.uploadpurging.age, and only those', async () => {
  const { scheduleUploadPurge } = await import('../../src/registry/maintenance.js');
  const reg = await startRegistry({ storage: { maintenance: { uploadpurging: { age: '1h', interval: '1h' } } } });
  try {
    const old = await startSession(reg.url, 'purge/me');
    const fresh = await startSession(reg.url, 'purge/me');
    await fetch(old, { method: 'PATCH', body: Buffer.from('stale') });
    const oldId = old.split('/').pop()!;
    const uploads = 'docker/registry/v2/repositories/purge/me/_uploads';
    await reg.ctx.driver.putContent(
      `${uploads}/${oldId}/startedat`,
      Buffer.from(new Date(Date.now() - 2 * 3600_000).toISOString()),
    );
    const dry = await reg.ctx.uploads.purge(new Date(Date.now() - 3600_000), true);
    assert.deepEqual(dry, [`purge/me/${oldId}`]);
    assert.equal((await fetch(old)).status, 204);
    const job = scheduleUploadPurge(reg.ctx, reg.app.log);
    try {
      for (let i = 0; i < 2000 && (await reg.ctx.driver.list(uploads)).includes(oldId); i++)
        await new Promise((r) => setTimeout(r, 5));
    } finally {
      job.stop();
    }
    assert.equal((await fetch(old)).status, 404);
    assert.equal((await fetch(fresh)).status, 204);
  } finally {
    await reg.close();
  }
});
