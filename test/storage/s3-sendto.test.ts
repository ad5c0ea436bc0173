// Blob GETs on S3 through S3Driver.sendTo: a signed GetObject of its own, read into one reused buffer
// (src/storage/http-pump.ts). A small HTTP proxy in front of s3rver records what the node sends, which of its
// connections are still open, and (in one test) takes the Content-Length off responses.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { digestOf } from '../../src/oci/digest.js';
import { S3Driver, type S3Options } from '../../src/storage/s3.js';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { bytesOf, startSession, withDigest } from '../helpers/oci-http.js';

let s3: TestS3;

before(async () => {
  s3 = await startS3('reg');
});

after(() => s3.close());

interface Proxy {
  endpoint: string;
  /** Headers of every GET whose URL contains `part`. */
  gets(part: string): IncomingHttpHeaders[];
  /** Connections open now that sent a request with `connection: close` (sendTo's own; the SDK keeps its pooled ones alive). */
  openOwn(): number;
  /** Whether GET responses lose their Content-Length (so Node sends them chunked). */
  unframed: boolean;
  /** How many more of sendTo's own GETs are answered 503 SlowDown. */
  slowDown: number;
  close(): Promise<void>;
}

/** A forwarding proxy to the test S3: the Host header passes unchanged, so SigV4 signatures still hold. */
async function startProxy(): Promise<Proxy> {
  const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
  const own = new Set<Socket>();
  const target = new URL(s3.endpoint);
  const proxy: Proxy = {
    endpoint: '',
    gets: (part) => seen.filter((r) => r.url.includes(part)).map((r) => r.headers),
    openOwn: () => [...own].filter((s) => !s.destroyed).length,
    unframed: false,
    slowDown: 0,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET') seen.push({ url: req.url ?? '', headers: req.headers });
    if (req.headers.connection === 'close') {
      own.add(req.socket);
      req.socket.once('close', () => own.delete(req.socket));
      if (req.method === 'GET' && proxy.slowDown > 0) {
        proxy.slowDown--;
        const xml =
          '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';
        res.writeHead(503, { 'content-type': 'application/xml', 'content-length': String(Buffer.byteLength(xml)) });
        res.end(xml);
        return;
      }
    }
    const up = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (ur) => {
        const headers = { ...ur.headers };
        if (proxy.unframed && req.method === 'GET') delete headers['content-length'];
        res.writeHead(ur.statusCode ?? 502, headers);
        ur.pipe(res);
        res.once('close', () => ur.destroy());
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  proxy.endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return proxy;
}

/** Runs `fn` with a registry whose S3 requests go through a fresh proxy, on its own root. */
async function viaProxy(root: string, fn: (reg: TestRegistry, p: Proxy) => Promise<void>): Promise<void> {
  const p = await startProxy();
  const reg = await startRegistry({
    storage: { filesystem: undefined, s3: s3.config(root, { regionendpoint: p.endpoint }) },
  });
  try {
    await fn(reg, p);
  } finally {
    await reg.close();
    await p.close();
  }
}

/** Pushes bytes as one blob of `repo`; returns its digest. */
async function pushBlob(url: string, repo: string, bytes: Buffer): Promise<string> {
  const digest = digestOf(bytes);
  const r = await fetch(withDigest(await startSession(url, repo), digest), {
    method: 'PUT',
    body: bytes,
    headers: { 'content-type': 'application/octet-stream' },
  });
  assert.equal(r.status, 201);
  return digest;
}

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('blob GETs on S3 come through sendTo: whole, ranged and to a slow reader, every byte right, on signed GETs of their own', async () => {
  await viaProxy('sendto-ok', async (reg, p) => {
    const bytes = randomBytes(9 << 20);
    const digest = await pushBlob(reg.url, 'lib/big', bytes);
    const url = `${reg.url}/v2/lib/big/blobs/${digest}`;
    const whole = await fetch(url);
    assert.equal(whole.status, 200);
    assert.equal(digestOf(await bytesOf(whole)), digest);

    const part = await fetch(url, { headers: { range: 'bytes=1000-3000999' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 1000-3000999/${bytes.length}`);
    assert.ok((await bytesOf(part)).equals(bytes.subarray(1000, 3001000)));

    // A reader that stops for a while fills the socket, so the pump's writes wait and its reads pause: the
    // reused buffer must not be read into before the bytes in it have gone.
    const slow = await fetch(url);
    const reader = slow.body!.getReader();
    const hash = createHash('sha256');
    let n = 0;
    for (let first = true; ; first = false) {
      const { done, value } = await reader.read();
      if (done) break;
      hash.update(value);
      n += value.length;
      if (first) await new Promise((r) => setTimeout(r, 300));
      else if (n % 7 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.equal(n, bytes.length);
    assert.equal(`sha256:${hash.digest('hex')}`, digest);

    // Each blob GET was one ranged GetObject signed with the node's key, on a connection it closed after.
    const gets = p.gets(`/blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}/data`);
    assert.equal(gets.length, 3);
    assert.deepEqual(
      gets.map((h) => h.range),
      [`bytes=0-${bytes.length - 1}`, 'bytes=1000-3000999', `bytes=0-${bytes.length - 1}`],
    );
    for (const h of gets) {
      assert.equal(h.connection, 'close');
      assert.match(String(h.authorization), /^AWS4-HMAC-SHA256 Credential=S3RVER\/.*SignedHeaders=[^,]*range/);
    }
    await until('the node closed its GET connections', () => p.openOwn() === 0);
  });
});

test('a client hanging up mid-blob: the node stays up and its S3 connection for that GET closes', async () => {
  await viaProxy('sendto-abort', async (reg, p) => {
    const bytes = randomBytes(16 << 20);
    const digest = await pushBlob(reg.url, 'lib/cut', bytes);
    const url = `${reg.url}/v2/lib/cut/blobs/${digest}`;
    const ac = new AbortController();
    const r = await fetch(url, { signal: ac.signal });
    const reader = r.body!.getReader();
    await reader.read();
    // While the node waits for the client: its own connection to S3 is open (the body is far from read).
    assert.equal(p.openOwn(), 1);
    ac.abort();
    await reader.read().catch(() => undefined);
    await until('the node closed its S3 connection for the cut GET', () => p.openOwn() === 0);
    const again = await fetch(url);
    assert.equal(again.status, 200);
    assert.equal(digestOf(await bytesOf(again)), digest);
  });
});

test('a response without Content-Length (chunked) is read through the SDK instead, bytes intact', async () => {
  await viaProxy('sendto-chunked', async (reg, p) => {
    const bytes = randomBytes(3 << 20);
    const digest = await pushBlob(reg.url, 'lib/chunked', bytes);
    p.unframed = true;
    const r = await fetch(`${reg.url}/v2/lib/chunked/blobs/${digest}`, { headers: { range: 'bytes=5-2999999' } });
    assert.equal(r.status, 206);
    assert.ok((await bytesOf(r)).equals(bytes.subarray(5, 3000000)));
    // Twice asked: once by the pump, which gave up before writing a byte, once by the SDK.
    const gets = p.gets(`/${digest.slice(7)}/data`);
    assert.deepEqual(
      gets.map((h) => h.connection === 'close'),
      [true, false],
    );
  });
});

test('a 503 SlowDown to its own GET: the blob comes through the SDK, which retries, bytes intact', async () => {
  await viaProxy('sendto-slowdown', async (reg, p) => {
    const bytes = randomBytes(2 << 20);
    const digest = await pushBlob(reg.url, 'lib/slow', bytes);
    p.slowDown = 1;
    const r = await fetch(`${reg.url}/v2/lib/slow/blobs/${digest}`);
    assert.equal(r.status, 200);
    assert.equal(digestOf(await bytesOf(r)), digest);
    assert.deepEqual(
      p.gets(`/${digest.slice(7)}/data`).map((h) => h.connection === 'close'),
      [true, false],
    );
  });
});

test('S3Driver.sendTo: a missing object rejects with ENOENT, a refused key with the status, and nothing is written', async () => {
  const written: Buffer[] = [];
  const sink = () =>
    new Writable({
      write: (c: Buffer, _e, cb) => {
        written.push(c);
        cb();
      },
    });
  const d = new S3Driver(s3.config('sendto-missing') as unknown as S3Options);
  const bad = new S3Driver(
    s3.config('sendto-missing', { accesskey: 'NOBODY', secretkey: 'NOBODY' }) as unknown as S3Options,
  );
  try {
    await d.putContent('docker/registry/v2/blobs/there', randomBytes(2 << 20));
    await assert.rejects(
      d.sendTo('docker/registry/v2/blobs/absent', sink(), 0, 2 << 20),
      (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
    );
    await assert.rejects(
      bad.sendTo('docker/registry/v2/blobs/there', sink(), 0, 2 << 20),
      /GET answered 403: InvalidAccessKeyId/,
    );
    assert.equal(written.length, 0);
    // The object is there for the right key: the refusal above was the key's.
    await d.sendTo('docker/registry/v2/blobs/there', sink(), 0, 2 << 20);
    assert.equal(Buffer.concat(written).length, 2 << 20);
  } finally {
    d.destroy();
    bad.destroy();
  }
});
