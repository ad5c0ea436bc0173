import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { DockerEngine } from '../../src/transport/docker-engine.js';

const MiB = 1024 * 1024;

/** Writes `total` bytes of filler (the start of a JSON array, then spaces), a MiB at a time, respecting backpressure. */
function fill(res: ServerResponse, total: number): void {
  const chunk = Buffer.alloc(MiB, ' ');
  chunk[0] = '['.charCodeAt(0);
  let sent = 0;
  const more = (): void => {
    while (sent < total) {
      sent += MiB;
      if (!res.write(chunk)) return void res.once('drain', more);
    }
    res.end();
  };
  res.on('error', () => undefined);
  more();
}

/** A daemon that lies: a real HTTP server on a unix socket answering the Engine API with oversized bodies. */
async function lyingDaemon(t: TestContext, answer: (path: string, res: ServerResponse) => void): Promise<DockerEngine> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-engine-'));
  const socket = join(dir, 'docker.sock');
  const server = createServer((req, res) => {
    if (req.url === '/version') return void res.end('{"ApiVersion":"1.41"}');
    answer(req.url ?? '', res);
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });
  return new DockerEngine(`unix://${socket}`);
}

// A huge image list from a lying daemon: test/transport/hostile-daemon.test.ts.
test("DockerEngine reads at most 64 KiB of a daemon's error answer", { timeout: 120_000 }, async (t) => {
  const engine = await lyingDaemon(t, (_path, res) => {
    res.writeHead(500, { 'content-type': 'text/plain' });
    fill(res, 8 * MiB);
  });
  await assert.rejects(engine.imageId('busybox:1'), (e: Error) => {
    assert.ok(e.message.length < 1000, `the message is ${e.message.length} characters long`);
    assert.match(
      e.message,
      /GET \/v1\.41\/images\/busybox%3A1\/json: the Docker daemon's answer is (longer than|\d+ bytes \(Content-Length\), over) the 65536-byte bound.* \(HTTP 500\)$/,
    );
    return true;
  });
});
