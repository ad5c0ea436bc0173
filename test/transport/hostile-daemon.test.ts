import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerEngine } from '../../src/transport/docker-engine.js';

// A Docker Engine socket may be anyone's: its answers are read within a bound, whatever it sends.

for (const declared of [true, false]) {
  test(`a daemon answer of 400 MiB (${declared ? 'declared' : 'chunked'}) is refused within the bound, not read whole`, {
    timeout: 120_000,
  }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-daemon-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const sock = join(dir, 'docker.sock');
    const filler = Buffer.alloc(1 << 20, 0x20);
    let sent = 0;
    const server = createServer(async (req, res) => {
      if (req.url === '/version') return res.end('{"ApiVersion":"1.41"}');
      res.writeHead(200, {
        'content-type': 'application/json',
        ...(declared ? { 'content-length': String(400 << 20) } : {}),
      });
      res.write('[');
      for (let i = 0; i < 400 && !res.destroyed; i++) {
        sent += filler.length;
        if (!res.write(filler)) {
          await new Promise((resolve) => {
            res.once('drain', resolve);
            res.once('close', resolve);
          });
        }
      }
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    t.after(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    await assert.rejects(new DockerEngine(`unix://${sock}`).listImages(), /bound/);
    assert.ok(sent < 64 << 20, `the client took ${sent >> 20} MiB`);
  });
}
