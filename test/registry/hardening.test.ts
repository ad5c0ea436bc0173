import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, pushBlob, pushImage, pushManifest } from '../helpers/images.js';
import { bytesOf, errorCode, errorOf, startSession, withDigest } from '../helpers/oci-http.js';
import { basic, startAuthRegistry, USERS } from '../auth/fixture.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { MAX_REFERENCES } from '../../src/registry/manifest-routes.js';

/** An immutable-tag rule for x/** (tags v*) and an allow-all rule after it, for anonymous callers. */
const IMMUTABLE_V = {
  rules: [
    { name: 'immutable v tags', repos: ['x/**:v*'], who: ['*'], deny: ['overwrite'] },
    { repos: ['**'], who: ['*'], allow: ['pull', 'push', 'delete', 'overwrite', 'list'] },
  ],
};

test('24 concurrent PUTs of different manifests to a new immutable tag: exactly one 201, the rest DENIED naming the rule', async () => {
  const reg = await startRegistry({ access: IMMUTABLE_V });
  try {
    const images = await Promise.all(Array.from({ length: 24 }, (_, i) => makeImage({ label: `race-${i}` })));
    for (const img of images) {
      await pushBlob(reg.url, 'x/app', img.config);
      for (const l of img.layers) await pushBlob(reg.url, 'x/app', l);
    }
    const results = await Promise.all(
      images.map((img) => pushManifest(reg.url, 'x/app', 'v1', img.manifest, img.mediaType)),
    );
    const created = results.map((r, i) => [r.status, i] as const).filter(([s]) => s === 201);
    assert.equal(created.length, 1, `statuses: ${results.map((r) => r.status).join(',')}`);
    for (const r of results) {
      if (r.status === 201) continue;
      assert.equal(r.status, 403);
      const e = await errorOf(r);
      assert.equal(e.code, 'DENIED');
      assert.match(e.message, /immutable v tags/);
    }
    const winner = images[created[0]![1]]!;
    const g = await fetch(`${reg.url}/v2/x/app/manifests/v1`, { headers: { accept: winner.mediaType } });
    assert.equal(g.headers.get('docker-content-digest'), winner.digest);
    // The same manifest again is not an overwrite, concurrently too; a mutable tag still moves freely.
    const again = await Promise.all(
      Array.from({ length: 8 }, () => pushManifest(reg.url, 'x/app', 'v1', winner.manifest, winner.mediaType)),
    );
    for (const r of again) assert.equal(r.status, 201);
    const loser = images[(created[0]![1] + 1) % images.length]!;
    assert.equal((await pushManifest(reg.url, 'x/app', 'latest', winner.manifest, winner.mediaType)).status, 201);
    assert.equal((await pushManifest(reg.url, 'x/app', 'latest', loser.manifest, loser.mediaType)).status, 201);
    // Tags pushed by digest with ?tag= go through the same step.
    const byDigest = await Promise.all(
      images.slice(0, 6).map((img) =>
        fetch(`${reg.url}/v2/x/app/manifests/${img.digest}?tag=v2&tag=v3`, {
          method: 'PUT',
          body: img.manifest,
          headers: { 'content-type': img.mediaType },
        }),
      ),
    );
    assert.equal(
      byDigest.filter((r) => r.status === 201).length,
      1,
      `statuses: ${byDigest.map((r) => r.status).join(',')}`,
    );
  } finally {
    await reg.close();
  }
});

/** An image manifest listing one layer `times` times (and a config), as bytes. */
function repeatedLayerManifest(
  config: { digest: string; size: number },
  layer: { digest: string; size: number },
  times: number,
): Buffer {
  const d = { mediaType: MediaType.OciLayerGzip, digest: layer.digest, size: layer.size };
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, ...config },
      layers: Array.from({ length: times }, () => d),
    }),
  );
}

test('a manifest listing one layer 25,000 times is one reference check: 201, and other clients are served meanwhile', async () => {
  const reg = await startRegistry();
  try {
    const cfg = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const layer = randomBytes(1000);
    const cd = await pushBlob(reg.url, 'big/refs', cfg);
    const ld = await pushBlob(reg.url, 'big/refs', layer);
    const bytes = repeatedLayerManifest({ digest: cd, size: cfg.length }, { digest: ld, size: layer.length }, 25_000);
    assert.ok(bytes.length < 4 * 1024 * 1024, `${bytes.length} bytes`);
    const img = await makeImage({ label: 'bystander' });
    await pushImage(reg.url, 'other/repo', 'v1', img);
    // Several such PUTs at once, while another client pulls: nobody sees a 500 or a reset connection.
    const puts = Array.from({ length: 4 }, () =>
      pushManifest(reg.url, 'big/refs', 'many', bytes, MediaType.OciManifest),
    );
    const pulls = Array.from({ length: 40 }, async () => {
      const g = await fetch(`${reg.url}/v2/other/repo/blobs/${img.layers[0]!.descriptor.digest}`);
      assert.equal(g.status, 200);
      assert.deepEqual(await bytesOf(g), img.layers[0]!.bytes);
    });
    const [results] = await Promise.all([Promise.all(puts), Promise.all(pulls)]);
    for (const r of results) assert.equal(r.status, 201, await r.text());
    const g = await fetch(`${reg.url}/v2/big/refs/manifests/many`, { headers: { accept: MediaType.OciManifest } });
    assert.deepEqual(await bytesOf(g), bytes);
    // The same shape with one missing layer is still refused as such, naming it once.
    const missing = digestOf('never pushed');
    const bad = repeatedLayerManifest({ digest: cd, size: cfg.length }, { digest: missing, size: 12 }, 25_000);
    const r = await pushManifest(reg.url, 'big/refs', 'bad', bad, MediaType.OciManifest);
    assert.equal(r.status, 400);
    const body = (await r.json()) as { errors: { code: string; detail: unknown[] }[] };
    assert.equal(body.errors[0]!.code, 'MANIFEST_BLOB_UNKNOWN');
    assert.deepEqual(body.errors[0]!.detail, [{ digest: missing }]);
  } finally {
    await reg.close();
  }
});

test(`a manifest referencing more than ${MAX_REFERENCES} distinct digests is MANIFEST_INVALID, before any lookup`, async () => {
  const reg = await startRegistry();
  try {
    const cfg = Buffer.from('{}');
    const cd = await pushBlob(reg.url, 'many/distinct', cfg);
    // With the config, one more distinct digest than allowed.
    const layers = Array.from({ length: MAX_REFERENCES }, (_, i) => ({
      mediaType: MediaType.OciLayerGzip,
      digest: digestOf(`layer ${i}`),
      size: 1,
    }));
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: cd, size: 2 },
        layers,
      }),
    );
    const r = await pushManifest(reg.url, 'many/distinct', 'v1', bytes, MediaType.OciManifest);
    assert.equal(r.status, 400);
    const e = await errorOf(r);
    assert.equal(e.code, 'MANIFEST_INVALID');
    assert.match(e.message, new RegExp(`${MAX_REFERENCES + 1} distinct digests.*at most ${MAX_REFERENCES}`));
  } finally {
    await reg.close();
  }
});

test('manifest GET and HEAD answer 304 to an If-None-Match naming the ETag, by tag and by digest', async () => {
  const reg = await startRegistry();
  try {
    const img = await makeImage({ label: 'inm' });
    await pushImage(reg.url, 'inm/m', 'v1', img);
    const zero = `"sha256:${'0'.repeat(64)}"`;
    for (const ref of ['v1', img.digest]) {
      for (const method of ['GET', 'HEAD']) {
        for (const inm of [`"${img.digest}"`, `W/"${img.digest}"`, img.digest, '*', `${zero}, "${img.digest}"`]) {
          const r = await fetch(`${reg.url}/v2/inm/m/manifests/${ref}`, {
            method,
            headers: { 'if-none-match': inm, accept: img.mediaType },
          });
          assert.equal(r.status, 304, `${method} ${ref} ${inm}`);
          assert.equal(r.headers.get('etag'), `"${img.digest}"`);
          assert.equal(r.headers.get('docker-content-digest'), img.digest);
          assert.equal((await bytesOf(r)).length, 0);
        }
        const miss = await fetch(`${reg.url}/v2/inm/m/manifests/${ref}`, {
          method,
          headers: { 'if-none-match': zero, accept: img.mediaType },
        });
        assert.equal(miss.status, 200);
        if (method === 'GET') assert.deepEqual(await bytesOf(miss), img.manifest);
      }
    }
    const absent = await fetch(`${reg.url}/v2/inm/m/manifests/nope`, { headers: { 'if-none-match': '*' } });
    assert.equal(absent.status, 404);
  } finally {
    await reg.close();
  }
});

test('a mount from a repository the caller may not pull opens an upload session (202); the blob stays unreadable until uploaded', async () => {
  // alice may push alice/**, but not pull team-b/**, where the blob is.
  const fx = await startAuthRegistry({
    access: {
      rules: [
        { repos: ['$user/**'], who: ['authenticated'], allow: ['pull', 'push', 'delete', 'overwrite'] },
        { repos: ['team-b/**'], who: ['bob'], allow: ['pull', 'push'] },
      ],
    },
  });
  try {
    const url = fx.reg.url;
    const bob = { authorization: basic('bob', USERS.bob) };
    const alice = { authorization: basic('alice', USERS.alice) };
    const data = randomBytes(5000);
    const d = digestOf(data);
    const up = await fetch(`${url}/v2/team-b/secret/blobs/uploads/?digest=${d}`, {
      method: 'POST',
      body: data,
      headers: bob,
    });
    assert.equal(up.status, 201);
    assert.equal(
      (await fetch(`${url}/v2/team-b/secret/blobs/${d}`, { headers: alice })).status,
      403,
      'alice cannot read the source',
    );

    const m = await fetch(`${url}/v2/alice/app/blobs/uploads/?mount=${d}&from=team-b/secret`, {
      method: 'POST',
      headers: alice,
    });
    assert.equal(m.status, 202, await m.text());
    const loc = m.headers.get('location');
    assert.match(loc ?? '', /^\/v2\/alice\/app\/blobs\/uploads\/[0-9a-f-]{36}$/);
    assert.equal((await fetch(`${url}/v2/alice/app/blobs/${d}`, { headers: alice })).status, 404, 'not mounted');
    // The session is an ordinary one: the upload makes the blob readable.
    const put = await fetch(withDigest(new URL(loc!, url).toString(), d), {
      method: 'PUT',
      body: data,
      headers: alice,
    });
    assert.equal(put.status, 201);
    const g = await fetch(`${url}/v2/alice/app/blobs/${d}`, { headers: alice });
    assert.deepEqual(await bytesOf(g), data);

    // Bob may read the source and push to team-b/other: his mount links (201).
    const bm = await fetch(`${url}/v2/team-b/other/blobs/uploads/?mount=${d}&from=team-b/secret`, {
      method: 'POST',
      headers: bob,
    });
    assert.equal(bm.status, 201);
    // Without push on the target, the request itself is still refused.
    const no = await fetch(`${url}/v2/team-b/x/blobs/uploads/?mount=${d}&from=alice/app`, {
      method: 'POST',
      headers: alice,
    });
    assert.equal(no.status, 403);
    assert.equal(await errorCode(no), 'DENIED');
  } finally {
    await fx.close();
  }
});

test('storage.automount: auto mounts without from only with no access control; true and false override', async () => {
  const access = { rules: [{ repos: ['**'], who: ['*'], allow: ['pull', 'push'] }] };
  const cases: [Record<string, unknown>, number][] = [
    [{}, 201],
    [{ access }, 202],
    [{ access, storage: { automount: true } }, 201],
    [{ storage: { automount: false } }, 202],
    [{ access, storage: { automount: 'auto' } }, 202],
  ];
  for (const [config, want] of cases) {
    const reg = await startRegistry(config);
    try {
      const d = await pushBlob(reg.url, 'src/repo', Buffer.from('automount me'));
      const r = await fetch(`${reg.url}/v2/dst/repo/blobs/uploads/?mount=${d}`, { method: 'POST' });
      assert.equal(r.status, want, JSON.stringify(config));
      // HEAD, not GET: a streamed GET answered just before close() can leave the connection counted as busy,
      // and the server's close then waits for the keep-alive timeout.
      const h = await fetch(`${reg.url}/v2/dst/repo/blobs/${d}`, { method: 'HEAD' });
      assert.equal(h.status, want === 201 ? 200 : 404, JSON.stringify(config));
    } finally {
      await reg.close();
    }
  }
  await assert.rejects(startRegistry({ storage: { automount: 'yes' } }), /automount/);
});

/** Sends raw bytes on a fresh connection and returns the whole response text. */
function rawHttp(host: string, head: string, body: Buffer): Promise<string> {
  const [h, p] = host.split(':');
  return new Promise((resolve, reject) => {
    // No half-close: the request says Connection: close, and the server ends the connection after answering.
    const s = connect(Number(p), h!, () => s.write(Buffer.concat([Buffer.from(head), body])));
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    s.on('error', reject);
    s.setTimeout(10_000, () => s.destroy(new Error('no answer in 10s')));
  });
}

function chunked(b: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n0\r\n\r\n')]);
}

test('a transfer coding other than chunked is refused (400, OCI error), never stored coded under the coded digest', async () => {
  const reg = await startRegistry();
  try {
    const data = Buffer.from('plain layer bytes '.repeat(50));
    const gz = gzipSync(data);
    const coded = digestOf(gz);
    const loc = new URL(await startSession(reg.url, 'te/x'));
    const cases = [
      `POST /v2/te/x/blobs/uploads/?digest=${coded} HTTP/1.1`,
      `PATCH ${loc.pathname} HTTP/1.1`,
      `PUT ${loc.pathname}?digest=${coded} HTTP/1.1`,
      `PUT /v2/te/x/manifests/v1 HTTP/1.1`,
    ];
    for (const line of cases) {
      const res = await rawHttp(
        reg.host,
        `${line}\r\nHost: ${reg.host}\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n`,
        chunked(gz),
      );
      assert.match(res, /^HTTP\/1\.1 400 /, `${line}: ${res}`);
      const code = /"code":"([A-Z_]+)"/.exec(res)?.[1];
      assert.ok(code === 'BLOB_UPLOAD_INVALID' || code === 'MANIFEST_INVALID', `${line}: ${res}`);
      assert.match(res, /Transfer-Encoding gzip is not supported/);
    }
    assert.equal((await fetch(`${reg.url}/v2/te/x/blobs/${coded}`)).status, 404);
    // The session was left as it was, and plain chunked framing works.
    const ok = await rawHttp(
      reg.host,
      `PUT ${loc.pathname}?digest=${digestOf(data)} HTTP/1.1\r\nHost: ${reg.host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`,
      chunked(data),
    );
    assert.match(ok, /^HTTP\/1\.1 201 /, ok);
  } finally {
    await reg.close();
  }
});

test('a Content-Encoding other than identity on an upload or manifest is refused with 415, whichever digest is named', async () => {
  const reg = await startRegistry();
  try {
    const data = Buffer.from('plain layer bytes '.repeat(50));
    const gz = gzipSync(data);
    for (const digest of [digestOf(data), digestOf(gz)]) {
      const r = await fetch(`${reg.url}/v2/ce/x/blobs/uploads/?digest=${digest}`, {
        method: 'POST',
        body: gz,
        headers: { 'content-encoding': 'gzip' },
      });
      assert.equal(r.status, 415);
      const e = await errorOf(r);
      assert.equal(e.code, 'UNSUPPORTED');
      assert.match(e.message, /Content-Encoding gzip/);
      assert.equal((await fetch(`${reg.url}/v2/ce/x/blobs/${digest}`)).status, 404);
    }
    const loc = await startSession(reg.url, 'ce/x');
    const p = await fetch(loc, { method: 'PATCH', body: gz, headers: { 'content-encoding': 'gzip' } });
    assert.equal(p.status, 415);
    const f = await fetch(withDigest(loc, digestOf(gz)), {
      method: 'PUT',
      body: gz,
      headers: { 'content-encoding': 'br, gzip' },
    });
    assert.equal(f.status, 415);
    const img = await makeImage({ label: 'ce' });
    await pushImage(reg.url, 'ce/x', 'v0', img);
    const mz = await fetch(`${reg.url}/v2/ce/x/manifests/v1`, {
      method: 'PUT',
      body: gzipSync(img.manifest),
      headers: { 'content-type': img.mediaType, 'content-encoding': 'gzip' },
    });
    assert.equal(mz.status, 415);
    // identity is no coding at all.
    const id = await fetch(`${reg.url}/v2/ce/x/blobs/uploads/?digest=${digestOf(data)}`, {
      method: 'POST',
      body: data,
      headers: { 'content-encoding': 'identity' },
    });
    assert.equal(id.status, 201);
  } finally {
    await reg.close();
  }
});
