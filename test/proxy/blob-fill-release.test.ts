import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { BlobFills } from '../../src/proxy/blob-fill.js';
import type { RepositoryName } from '../../src/oci/name.js';
import { BlobStore } from '../../src/storage/blobs.js';
import type { FileWriter } from '../../src/storage/driver.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { UploadStore } from '../../src/storage/uploads.js';
import { blobOf } from '../helpers/fill.js';

const REPO = 'docker.io/library/fill' as RepositoryName;
/** More than undici and the socket buffer hold, so an unread body pauses the connection instead of completing. */
const SIZE = 16 * 1024 * 1024;

/** An upstream on 127.0.0.1 answering every GET with SIZE bytes; tells when a response's connection closes. */
async function bigUpstream() {
  const responses: ServerResponse[] = [];
  const server = createServer((_req, res) => {
    responses.push(res);
    res.writeHead(200, { 'content-length': String(SIZE), 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(1024 * 1024, 7);
    let sent = 0;
    const more = () => {
      while (sent < SIZE) {
        sent += chunk.length;
        if (!res.write(chunk)) return res.once('drain', more);
      }
      res.end();
    };
    more();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/blob`,
    responses,
    close: () => new Promise<void>((r) => server.close(() => r())),
    kill: () => server.closeAllConnections(),
  };
}

/** Resolves true when the response's socket closes within `ms`, false otherwise. */
async function closesWithin(res: ServerResponse, ms: number): Promise<boolean> {
  if (res.socket === null || res.socket.destroyed) return true;
  return Promise.race([once(res.socket, 'close').then(() => true), sleep(ms).then(() => false)]);
}

/** A fill that fails before its first byte is read lets go of the upstream body (and so of the connection). */
async function failsEarly(
  why: string,
  driverFor: (root: string) => FilesystemDriver,
  announced: (size: number) => number,
): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'sluice-fill-release-'));
  const up = await bigUpstream();
  const agent = new Agent();
  try {
    const driver = driverFor(root);
    const blobs = new BlobStore(driver);
    const fills = new BlobFills({ driver, blobs, uploads: new UploadStore(driver, blobs) });
    const blob = blobOf(SIZE / (256 * 1024));
    const res = await request(up.url, { dispatcher: agent });
    const fill = await fills.start(
      blob.digest,
      blob.size,
      REPO,
      async () => ({ body: res.body, size: announced(blob.size) }),
      async () => undefined,
    );
    await fill.finished;
    assert.equal(fill.state, 'failed');
    assert.match(fill.error!.message, why === 'size' ? /announced/ : /no room/);
    assert.equal(up.responses.length, 1);
    // Before: the body was never read nor destroyed, so the connection stayed open (paused, which undici's
    // body timeout does not cut) for as long as the process ran.
    assert.equal(await closesWithin(up.responses[0]!, 3000), true, 'the upstream connection is still held');
    await fills.settle();
  } finally {
    up.kill();
    // destroy, not close: close would wait for a body nobody reads.
    await agent.destroy().catch(() => undefined);
    await up.close();
    await rm(root, { recursive: true, force: true });
  }
}

test('a fill whose upstream announces another size than the manifest releases the upstream connection', {
  timeout: 60_000,
}, async () => {
  await failsEarly(
    'size',
    (root) => new FilesystemDriver(root),
    (size) => size + 1,
  );
});

test('a fill whose storage cannot open a writer releases the upstream connection', { timeout: 60_000 }, async () => {
  class FullDriver extends FilesystemDriver {
    override async writer(path: string): Promise<FileWriter> {
      if (path.includes('/_uploads/')) throw Object.assign(new Error('no room left on the device'), { code: 'ENOSPC' });
      return super.writer(path);
    }
  }
  await failsEarly(
    'storage',
    (root) => new FullDriver(root),
    (size) => size,
  );
});
