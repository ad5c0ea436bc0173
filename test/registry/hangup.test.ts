import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRegistry } from '../helpers/registry.js';
import { pushBlob } from '../helpers/images.js';
import { bytesOf } from '../helpers/oci-http.js';

/** Starts a blob download, reads a little of it slowly, then resets the connection as a killed client does. */
async function abandonDownload(host: string, path: string, readBytes: number): Promise<void> {
  const [h, p] = host.split(':');
  const sock = connect(Number(p), h!);
  await new Promise<void>((res, rej) => sock.once('connect', res).once('error', rej));
  sock.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  let got = 0;
  await new Promise<void>((res) => {
    sock.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= readBytes) {
        sock.pause();
        res();
      }
    });
  });
  // Let the server fill the socket buffers and block on a write, then hang up with unread data (RST).
  await sleep(300);
  sock.resetAndDestroy();
}

test('a client that walks away from a blob download does not harm the server', async () => {
  const reg = await startRegistry();
  try {
    const data = randomBytes(20 * 1024 * 1024);
    const d = await pushBlob(reg.url, 'hang/up', data);
    for (let i = 0; i < 5; i++) await abandonDownload(reg.host, `/v2/hang/up/blobs/${d}`, 64 * 1024);
    // Several at once, and one that hangs up with ranges too.
    await Promise.all([0, 1, 2].map(() => abandonDownload(reg.host, `/v2/hang/up/blobs/${d}`, 1024)));
    await sleep(300);
    // The server still answers, and the blob is whole.
    const r = await fetch(`${reg.url}/v2/hang/up/blobs/${d}`);
    assert.equal(r.status, 200);
    assert.deepEqual(await bytesOf(r), data);
  } finally {
    await reg.close();
  }
});

test('closing the server right after blob downloads does not wait for keep-alive connections', async () => {
  for (let round = 0; round < 4; round++) {
    const reg = await startRegistry();
    const data = randomBytes(64 * 1024);
    const d = await pushBlob(reg.url, 'close/fast', data);
    for (let i = 0; i < 3; i++) await (await fetch(`${reg.url}/v2/close/fast/blobs/${d}`)).arrayBuffer();
    const started = Date.now();
    await reg.close();
    // Before: a connection whose response was still finishing at close time kept the server up ~72 s.
    assert.ok(Date.now() - started < 3000, `close took ${Date.now() - started} ms`);
  }
});
