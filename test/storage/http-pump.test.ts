// pumpGet over HTTPS (real S3 endpoints are): a TLS socket still delivers bytes it had decrypted after the
// pump paused it, which must neither overwrite the reused buffer nor end the transfer early.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { nothingWritten, pumpGet } from '../../src/storage/http-pump.js';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { makePki } from '../helpers/tls.js';

const pumpJs = fileURLToPath(new URL('../../src/storage/http-pump.js', import.meta.url));

// Run in a child: NODE_EXTRA_CA_CERTS (the test CA) is read only when a process starts. The writable calls
// back on a later turn, so the pump waits on it and pauses its socket after every read, and TLS delivers
// records it had decrypted after each pause.
const child = `
const { pumpGet } = await import(process.env.PUMP_JS);
const { Writable } = await import('node:stream');
const { createHash } = await import('node:crypto');
const h = createHash('sha256');
let n = 0;
// Like a socket, the writable reads the bytes only when it calls back: bytes overwritten before then show in the hash.
const out = new Writable({ highWaterMark: 1024, write(c, _e, cb) { setImmediate(() => { h.update(c); n += c.length; cb(); }); } });
const length = Number(process.env.LENGTH);
await pumpGet({ url: new URL(process.env.URL), headers: { range: 'bytes=7-' } }, out, length, 7);
// Resolved: every byte must have been taken by the writable already.
process.stdout.write(JSON.stringify({ n, sha: h.digest('hex') }));
`;

test('pumpGet over HTTPS to a writable that calls back late: every byte, in order, before it resolves', {
  timeout: 60_000,
}, async () => {
  const pki = await makePki();
  const body = randomBytes(6 << 20);
  const server = createServer(
    { cert: await readFile(pki.serverCert), key: await readFile(pki.serverKey) },
    (req, res) => {
      assert.equal(req.headers.range, 'bytes=7-');
      res.writeHead(206, { 'content-length': String(body.length - 7) });
      res.end(body.subarray(7));
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const port = (server.address() as { port: number }).port;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', child], {
      env: {
        ...process.env,
        NODE_EXTRA_CA_CERTS: pki.caCert,
        PUMP_JS: pumpJs,
        URL: `https://localhost:${port}/obj`,
        LENGTH: String(body.length - 7),
      },
    });
    const got = JSON.parse(stdout) as { n: number; sha: string };
    assert.equal(got.n, body.length - 7);
    assert.equal(got.sha, createHash('sha256').update(body.subarray(7)).digest('hex'));
  } finally {
    server.closeAllConnections();
    server.close();
    await pki.cleanup();
  }
});

/** A TCP server answering every GET with a 200 head for `length` bytes, then `send(socket)`. */
async function rawServer(length: number, send: (s: Socket) => void): Promise<{ url: URL; close: () => void }> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((s) => {
    sockets.add(s);
    s.once('data', () => {
      s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${length}\r\n\r\n`);
      send(s);
    });
    s.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}/obj`),
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

test('pumpGet fails a transfer whose server stops sending, and never one whose receiver is slow', {
  timeout: 30_000,
}, async () => {
  const length = 4 << 20;
  // Half the body, then silence.
  const stalled = await rawServer(length, (s) => s.write(randomBytes(length / 2)));
  try {
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    // The stall limit is well above a loaded machine's scheduling pauses: server and client share this process, and
    // at 300 ms the timer fired on a machine at load 18 before the first bytes were read (a flake, 2 runs of 3).
    const limit = 1500;
    const said = /sent nothing for 1500 ms \(2097152 of 4194304 bytes received\)/;
    await assert.rejects(pumpGet({ url: stalled.url, headers: {} }, sink, length, undefined, limit), said);
  } finally {
    stalled.close();
  }
  // Every byte at once, to a receiver that takes each write 1.5 s later: longer than the stall limit each time.
  // (The limits are a second and more: at 150 ms the timers fired on a loaded machine's scheduling pauses.)
  const small = 1 << 20;
  const body = randomBytes(small);
  const quick = await rawServer(small, (s) => s.write(body));
  try {
    let n = 0;
    const h = createHash('sha256');
    const slow = new Writable({
      highWaterMark: 1024,
      write: (c: Buffer, _e, cb) => {
        setTimeout(() => {
          h.update(c);
          n += c.length;
          cb();
        }, 1500);
      },
    });
    await pumpGet({ url: quick.url, headers: {} }, slow, small, undefined, 1000);
    assert.equal(n, small);
    assert.equal(h.digest('hex'), createHash('sha256').update(body).digest('hex'));
  } finally {
    quick.close();
  }
});

test('pumpGet: a stall after a slow receiver still fails; a failure before any byte says so, one after does not', {
  timeout: 30_000,
}, async () => {
  const length = 4 << 20;
  const stalled = await rawServer(length, (s) => s.write(randomBytes(length / 2)));
  try {
    // The receiver takes its first write after 1.5 s (the stall limit is 1 s), then at once.
    let first = true;
    const slowOnce = new Writable({
      highWaterMark: 1024,
      write: (_c, _e, cb) => {
        if (first) setTimeout(cb, 1500);
        else cb();
        first = false;
      },
    });
    const e = await pumpGet({ url: stalled.url, headers: {} }, slowOnce, length, undefined, 1000).then(
      () => undefined,
      (x: Error) => x,
    );
    assert.match(String(e), /sent nothing for 1000 ms/);
    assert.equal(nothingWritten(e), false, 'bytes had been written');
  } finally {
    stalled.close();
  }
  // Nobody listens there: refused before any byte.
  const free = await rawServer(length, () => undefined);
  const url = free.url;
  free.close();
  await new Promise((r) => setTimeout(r, 50));
  const refused = await pumpGet({ url, headers: {} }, new Writable({ write: (_c, _e, cb) => cb() }), length).then(
    () => undefined,
    (x: Error) => x,
  );
  assert.ok(refused, 'a GET to a closed port fails');
  assert.equal(nothingWritten(refused), true, String(refused));
});
