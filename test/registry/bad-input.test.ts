import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { readdir, readlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeImage, pushImage, pushManifest, type TestImage } from '../helpers/images.js';
import { assertIntact, errorCode, errorOf, rawRequest, startSession, withDigest } from '../helpers/oci-http.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';

/** A registry with one image pushed as `good/app:v1`, checked intact after each bad request. */
async function withImage(
  fn: (reg: TestRegistry, img: TestImage) => Promise<void>,
  config: Record<string, unknown> = {},
): Promise<void> {
  const reg = await startRegistry(config);
  try {
    const img = await makeImage({ label: 'good' });
    await pushImage(reg.url, 'good/app', 'v1', img);
    await fn(reg, img);
    await assertIntact(reg.url, 'good/app', 'v1', img);
    const tags = (await (await fetch(`${reg.url}/v2/good/app/tags/list`)).json()) as { tags: string[] };
    assert.deepEqual(tags.tags, ['v1']);
  } finally {
    await reg.close();
  }
}

/** Waits until a condition holds (polling storage state, not a timing assertion). */
async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (await cond()) return;
    await sleep(5);
  }
  throw new Error(`gave up waiting for ${what}`);
}

/**
 * Files under the registry's storage root this process holds open (the registry runs in the test process).
 * On S3 there are no files to leak, so this checks nothing there.
 */
async function openFilesUnder(reg: TestRegistry): Promise<string[]> {
  const out: string[] = [];
  if (reg.storage !== 'filesystem') return out;
  const dir = reg.root;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target.startsWith(dir)) out.push(target);
  }
  return out;
}

/** Sends request headers and part of a body over a raw socket, waits for `progress`, then hangs up. */
async function hangUpMidBody(url: string, head: string, part: Buffer, progress: () => Promise<boolean>): Promise<void> {
  const u = new URL(url);
  const sock = connect(Number(u.port), u.hostname);
  await once(sock, 'connect');
  sock.write(head);
  sock.write(part);
  await until(progress, 'the server to store part of the body');
  sock.destroy();
}

test('a broken JSON manifest is MANIFEST_INVALID and changes nothing', async () => {
  await withImage(async (reg, img) => {
    const bodies = [
      '{"schemaVersion": 2, "mediaType": ',
      'not json at all',
      '[]',
      JSON.stringify({ schemaVersion: 1, name: 'x', tag: 'v1', fsLayers: [] }),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: 'x', digest: 'sha256:zz', size: 1 },
        layers: [],
      }),
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: img.config.descriptor }),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.example.unknown',
        config: img.config.descriptor,
        layers: [],
      }),
    ];
    for (const b of bodies) {
      const r = await pushManifest(reg.url, 'good/app', 'v1', Buffer.from(b), MediaType.OciManifest);
      assert.equal(r.status, 400, b);
      assert.equal(await errorCode(r), 'MANIFEST_INVALID', b);
    }
    // The declared Content-Type must agree with the document.
    const r = await pushManifest(reg.url, 'good/app', 'v1', img.manifest, MediaType.DockerManifest);
    assert.equal(r.status, 400);
    assert.equal(await errorCode(r), 'MANIFEST_INVALID');
  });
});

test('a manifest naming unknown blobs is MANIFEST_BLOB_UNKNOWN and does not move the tag', async () => {
  await withImage(async (reg, img) => {
    const doc = JSON.parse(img.manifest.toString());
    doc.layers.push({ mediaType: MediaType.OciLayerGzip, digest: digestOf('missing layer'), size: 13 });
    const r = await pushManifest(reg.url, 'good/app', 'v1', Buffer.from(JSON.stringify(doc)), MediaType.OciManifest);
    assert.equal(r.status, 400);
    assert.equal(await errorCode(r), 'MANIFEST_BLOB_UNKNOWN');
  });
});

test('wrong digests on blob PUT and manifest PUT are DIGEST_INVALID and store nothing', async () => {
  await withImage(async (reg, img) => {
    const data = Buffer.from('bytes that do not match');
    const loc = await startSession(reg.url, 'good/app');
    const put = await fetch(withDigest(loc, img.layers[0]!.descriptor.digest), { method: 'PUT', body: data });
    assert.equal(put.status, 400);
    assert.equal(await errorCode(put), 'DIGEST_INVALID');
    assert.equal((await fetch(`${reg.url}/v2/good/app/blobs/${digestOf(data)}`)).status, 404);
    // Claiming an existing blob's digest with other bytes must not overwrite it either (checked by assertIntact).
    const mono = await fetch(`${reg.url}/v2/good/app/blobs/uploads/?digest=${img.config.descriptor.digest}`, {
      method: 'POST',
      body: data,
    });
    assert.equal(mono.status, 400);
    assert.equal(await errorCode(mono), 'DIGEST_INVALID');

    const other = await makeImage({ label: 'other' });
    const m = await pushManifest(reg.url, 'good/app', img.digest, other.manifest, other.mediaType);
    assert.equal(m.status, 400);
    assert.equal(await errorCode(m), 'DIGEST_INVALID');
    const bad = await pushManifest(reg.url, 'good/app', 'sha256:1234', img.manifest, img.mediaType);
    assert.equal(bad.status, 400);
    assert.equal(await errorCode(bad), 'DIGEST_INVALID');
    const tag = await pushManifest(reg.url, 'good/app', 'bad!tag', img.manifest, img.mediaType);
    assert.equal(tag.status, 400);
    assert.equal(await errorCode(tag), 'TAG_INVALID');
  });
});

test('a wrong Content-Range is RANGE_INVALID and leaves the session where it was', async () => {
  await withImage(async (reg) => {
    const loc = await startSession(reg.url, 'good/app');
    assert.equal(
      (await fetch(loc, { method: 'PATCH', body: Buffer.from('12345'), headers: { 'content-range': '0-4' } })).status,
      202,
    );
    for (const range of ['5-20', '3-7', '5-4', 'bytes=a-b']) {
      const r = await fetch(loc, { method: 'PATCH', body: Buffer.from('67890'), headers: { 'content-range': range } });
      assert.equal(r.status, 416, range);
      assert.equal(await errorCode(r), 'RANGE_INVALID');
    }
    // A Content-Range on the final PUT that does not continue the upload.
    const put = await fetch(withDigest(loc, digestOf('1234567890')), {
      method: 'PUT',
      body: Buffer.from('67890'),
      headers: { 'content-range': '6-10' },
    });
    assert.equal(put.status, 416);
    const st = await fetch(loc);
    assert.equal(st.headers.get('range'), '0-4');
    const ok = await fetch(withDigest(loc, digestOf('1234567890')), {
      method: 'PUT',
      body: Buffer.from('67890'),
      headers: { 'content-range': '5-9' },
    });
    assert.equal(ok.status, 201);
  });
});

test('names with ../ (plain or percent-encoded) and other invalid names are NAME_INVALID, and nothing is written outside', async () => {
  await withImage(async (reg, img) => {
    const digest = img.layers[0]!.descriptor.digest;
    const paths = [
      `/v2/../good/app/blobs/${digest}`,
      `/v2/good/../app/blobs/${digest}`,
      `/v2/good/%2e%2e/app/blobs/${digest}`,
      `/v2/%2e%2e/%2e%2e/etc/blobs/${digest}`,
      `/v2/good/%2E%2E/x/manifests/v1`,
      `/v2/good%2f..%2fapp/manifests/v1`,
      `/v2/Good/App/manifests/v1`,
      `/v2/good//app/manifests/v1`,
      `/v2/good/app./manifests/v1`,
      `/v2/${'a'.repeat(256)}/manifests/v1`,
      `/v2/good/%zz/manifests/v1`,
    ];
    for (const path of paths) {
      for (const method of ['GET', 'PUT', 'POST']) {
        const p = method === 'POST' ? path.replace(/\/(blobs|manifests)\/.*$/, '/blobs/uploads/') : path;
        const body = method === 'GET' ? undefined : img.manifest;
        const r = await rawRequest(reg.url, method, p, body, { 'content-type': img.mediaType });
        assert.ok(r.status === 400 || r.status === 404, `${method} ${p}: ${r.status}`);
        if (r.status === 400) assert.equal(JSON.parse(r.body).errors[0].code, 'NAME_INVALID', `${method} ${p}`);
        else assert.match(JSON.parse(r.body).errors[0].code, /NAME_(INVALID|UNKNOWN)/, `${method} ${p}`);
      }
    }
    // Only the one good repository exists, and nothing escaped the storage root.
    const cat = (await (await fetch(`${reg.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.deepEqual(cat.repositories, ['good/app']);
    assert.deepEqual((await reg.ctx.driver.list('')).sort(), ['docker']);
    assert.deepEqual((await reg.ctx.driver.list('docker/registry/v2')).sort(), ['blobs', 'repositories']);
  });
});

test('a manifest over the limit is refused with 413 and a clear message; so is a blob over limits.blobbytes', async () => {
  await withImage(
    async (reg, img) => {
      const doc = JSON.parse(img.manifest.toString());
      doc.annotations = { pad: 'x'.repeat(4 * 1024 * 1024) };
      const big = Buffer.from(JSON.stringify(doc));
      const r = await pushManifest(reg.url, 'good/app', 'v1', big, MediaType.OciManifest);
      assert.equal(r.status, 413);
      const e = await errorOf(r);
      assert.equal(e.code, 'MANIFEST_INVALID');
      assert.match(e.message, /manifest.*exceeds the limit of 4194304 bytes/);
      // Streamed (no Content-Length), so the limit is found while reading.
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < big.length; i += 65536) c.enqueue(big.subarray(i, i + 65536));
          c.close();
        },
      });
      const s = await fetch(`${reg.url}/v2/good/app/manifests/v1`, {
        method: 'PUT',
        body,
        duplex: 'half',
        headers: { 'content-type': MediaType.OciManifest },
      } as RequestInit).catch((err: Error) => err);
      if (s instanceof Response) {
        assert.equal(s.status, 413);
        assert.equal(await errorCode(s), 'MANIFEST_INVALID');
      }

      const loc = await startSession(reg.url, 'good/app');
      assert.equal((await fetch(loc, { method: 'PATCH', body: Buffer.alloc(600) })).status, 202);
      const over = await fetch(loc, { method: 'PATCH', body: Buffer.alloc(600) });
      assert.equal(over.status, 413);
      assert.equal(await errorCode(over), 'SIZE_INVALID');
      assert.equal((await fetch(loc)).headers.get('range'), '0-599');
      const mono = await fetch(`${reg.url}/v2/good/app/blobs/uploads/?digest=${digestOf(Buffer.alloc(2000))}`, {
        method: 'POST',
        body: Buffer.alloc(2000),
      });
      assert.equal(mono.status, 413);
      assert.equal(await errorCode(mono), 'SIZE_INVALID');
      assert.equal((await fetch(`${reg.url}/v2/good/app/blobs/${digestOf(Buffer.alloc(2000))}`)).status, 404);
    },
    { limits: { blobbytes: 1000 } },
  );
});

test('a client hanging up mid-PATCH leaves the session at its previous offset, no open file, and the server serving', async () => {
  await withImage(async (reg) => {
    const first = randomBytes(1000);
    const rest = randomBytes(400_000);
    const loc = await startSession(reg.url, 'good/app');
    const id = loc.split('/').pop()!;
    const dataFile = `docker/registry/v2/repositories/good/app/_uploads/${id}/data`;
    // The S3 writer holds bytes until a whole part is in: storage shows nothing to wait for, so give the
    // server a moment to read part of the body instead.
    const received = async (): Promise<boolean> => {
      if (reg.storage !== 's3') return (await reg.sizeOf(dataFile)) > 1000;
      await sleep(200);
      return true;
    };
    assert.equal((await fetch(loc, { method: 'PATCH', body: first })).status, 202);
    const path = new URL(loc).pathname;
    const u = new URL(reg.url);
    // With Content-Length: 200 KB of 400 KB sent.
    await hangUpMidBody(
      reg.url,
      `PATCH ${path} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${rest.length}\r\nContent-Range: 1000-${1000 + rest.length - 1}\r\n\r\n`,
      rest.subarray(0, 200_000),
      received,
    );
    // Chunked, with no length at all.
    const chunk = rest.subarray(0, 100_000);
    await hangUpMidBody(
      reg.url,
      `PATCH ${path} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n`,
      Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]),
      received,
    );
    // This PATCH queues behind the aborted ones, and succeeds only if they left the offset at 1000.
    const cont = await fetch(loc, {
      method: 'PATCH',
      body: rest,
      headers: { 'content-range': `1000-${1000 + rest.length - 1}` },
    });
    assert.equal(cont.status, 202, await cont.clone().text());
    assert.equal(cont.headers.get('range'), `0-${1000 + rest.length - 1}`);
    const all = Buffer.concat([first, rest]);
    const put = await fetch(withDigest(loc, digestOf(all)), { method: 'PUT' });
    assert.equal(put.status, 201);
    const g = await fetch(`${reg.url}/v2/good/app/blobs/${digestOf(all)}`);
    assert.deepEqual(Buffer.from(await g.arrayBuffer()), all);
    assert.deepEqual(await openFilesUnder(reg), []);
  });
});

test('a client hanging up mid monolithic upload leaves no blob, no session and no open file', async () => {
  await withImage(async (reg) => {
    const data = randomBytes(300_000);
    const d = digestOf(data);
    const uploads = 'docker/registry/v2/repositories/good/app/_uploads';
    const u = new URL(reg.url);
    const partSize = async (): Promise<number> => {
      // S3 holds the bytes in the writer until a part is full: waiting for the session to exist is what it shows.
      if (reg.storage === 's3') return (await reg.ctx.driver.list(uploads)).length;
      let total = 0;
      for (const id of await reg.ctx.driver.list(uploads))
        total += Math.max(0, await reg.sizeOf(`${uploads}/${id}/data`));
      return total;
    };
    await hangUpMidBody(
      reg.url,
      `POST /v2/good/app/blobs/uploads/?digest=${d} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${data.length}\r\n\r\n`,
      data.subarray(0, 150_000),
      async () => (await partSize()) > 0,
    );
    await until(async () => (await reg.ctx.driver.list(uploads)).length === 0, 'the aborted session to be removed');
    assert.equal((await fetch(`${reg.url}/v2/good/app/blobs/${d}`)).status, 404);
    await until(async () => (await openFilesUnder(reg)).length === 0, 'the upload file to be closed');
  });
});

test('a client hanging up mid-download leaves no open file and the server serving', async () => {
  await withImage(async (reg) => {
    const { request } = await import('node:http');
    const data = randomBytes(8 * 1024 * 1024);
    const { pushBlob } = await import('../helpers/images.js');
    const d = await pushBlob(reg.url, 'good/app', data);
    const u = new URL(reg.url);
    for (const range of [undefined, 'bytes=1000-']) {
      await new Promise<void>((resolve, reject) => {
        const req = request(
          { host: u.hostname, port: u.port, path: `/v2/good/app/blobs/${d}`, headers: range ? { range } : {} },
          (res) => {
            res.once('data', () => {
              req.destroy();
              resolve();
            });
          },
        );
        req.on('error', (e) => (req.destroyed ? undefined : reject(e)));
        req.end();
      });
      await until(async () => (await openFilesUnder(reg)).length === 0, 'the blob file to be closed');
    }
    const g = await fetch(`${reg.url}/v2/good/app/blobs/${d}`);
    assert.deepEqual(Buffer.from(await g.arrayBuffer()), data);
  });
});

/** Sends raw bytes on one connection and returns everything the server wrote before it closed. */
async function rawExchange(url: string, bytes: string): Promise<string> {
  const u = new URL(url);
  const sock = connect(Number(u.port), u.hostname);
  await once(sock, 'connect');
  const chunks: Buffer[] = [];
  sock.on('data', (c: Buffer) => chunks.push(c));
  sock.on('error', () => undefined);
  sock.end(bytes);
  await once(sock, 'close');
  return Buffer.concat(chunks).toString('latin1');
}

test('a request the HTTP parser refuses is answered with the OCI error JSON', async () => {
  await withImage(async (reg) => {
    const answer = await rawExchange(
      reg.url,
      'GET /v2/ HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
    );
    assert.match(answer, /^HTTP\/1\.1 400 /);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as {
      errors: { code: string; message: string }[];
    };
    assert.equal(body.errors[0]!.code, 'UNSUPPORTED');
    assert.match(body.errors[0]!.message, /not valid HTTP/);
  });
});

test("a Content-Type fastify cannot parse is answered with the OCI error JSON, not fastify's", async () => {
  await withImage(async (reg) => {
    const r = await fetch(`${reg.url}/v2/good/app/blobs/uploads/`, {
      method: 'POST',
      headers: { 'content-type': 'x'.repeat(300) },
      body: 'ab',
    });
    assert.equal(r.status, 415);
    assert.equal(await errorCode(r), 'UNSUPPORTED');
  });
});
