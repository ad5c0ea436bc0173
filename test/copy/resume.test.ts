import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CopySummary } from '../../src/copy/copy.js';
import { blobPath } from '../../src/transport/oci-layout.js';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { assertIntact } from '../helpers/oci-http.js';
import { scratch } from '../helpers/clients.js';
import { SLUICE_BIN, sluiceCopy, startSluiceProcess } from '../helpers/sluice-cli.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Bytes under a folder (missing folder: 0). */
async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  let entries: string[];
  try {
    entries = (await readdir(dir, { recursive: true })) as string[];
  } catch {
    return 0;
  }
  for (const e of entries) {
    const st = await stat(join(dir, e)).catch(() => null);
    if (st?.isFile()) total += st.size;
  }
  return total;
}

test('a copy interrupted by the target dying mid-blob finishes on a second run, sending only what was missing', {
  timeout: 180_000,
}, async () => {
  const s = await scratch();
  const root = join(s.dir, 'target');
  let target = await startSluiceProcess(root);
  let child: ChildProcess | undefined;
  try {
    const img = await makeImage({
      layers: [
        { 'a.bin': randomBytes(1_000_000) },
        { 'b.bin': randomBytes(4_000_000) },
        { 'c.bin': randomBytes(1_000_000) },
      ],
    });
    const src = join(s.dir, 'src');
    await writeOciLayout(src, [{ tag: 'v1', image: img }]);
    const [a, b, c] = img.layers as [(typeof img.layers)[0], (typeof img.layers)[0], (typeof img.layers)[0]];
    // Layer b is served through a FIFO, so the test decides when its bytes flow and when the target dies.
    const fifo = blobPath(src, b.descriptor.digest);
    await rm(fifo);
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);

    const copy = spawn(
      process.execPath,
      [
        SLUICE_BIN,
        'copy',
        '--json',
        '--jobs',
        '1',
        '--retry-times',
        '0',
        `oci:${src}:v1`,
        `docker://${target.host}/app:v1`,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child = copy;
    copy.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number>((r) => copy.once('exit', (code) => r(code ?? -1)));

    // Opened read-write and non-blocking: neither the open nor a write can hang the test, whatever the copy does.
    const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    const uploads = join(root, 'docker/registry/v2/repositories/app/_uploads');
    let arrived = 0;
    try {
      let written = 0;
      const deadline = Date.now() + 60_000;
      // Layer a (sent first with --jobs 1) must be complete, and then layer b's upload under way.
      const aDone = async () =>
        (await fetch(`${target.url}/v2/app/blobs/${a.descriptor.digest}`, { method: 'HEAD' })).status === 200;
      const bDone = async () => {
        arrived = await bytesUnder(uploads);
        return arrived > 0;
      };
      while (Date.now() < deadline && copy.exitCode === null && !((await aDone()) && (await bDone()))) {
        try {
          if (written < 2_000_000) written += writeSync(fd, b.bytes, written, Math.min(65536, 2_000_000 - written));
          else await sleep(50);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
          await sleep(10);
        }
      }
      assert.ok(arrived > 0, `no upload bytes arrived at the target; copy said: ${stderr}`);
      await target.kill();
    } finally {
      // Closing the only writer ends the stream for the copy, which then fails and exits.
      closeSync(fd);
    }
    assert.equal(await exited, 1, stderr);
    assert.match(stderr, /sluice: /);

    await rm(fifo);
    await writeFile(fifo, b.bytes);
    target = await startSluiceProcess(root, { port: Number(target.host.split(':')[1]) });
    const headA = await fetch(`${target.url}/v2/app/blobs/${a.descriptor.digest}`, { method: 'HEAD' });
    assert.equal(headA.status, 200, 'layer a was complete before the crash');
    const headB = await fetch(`${target.url}/v2/app/blobs/${b.descriptor.digest}`, { method: 'HEAD' });
    assert.equal(headB.status, 404, 'layer b was cut off');

    const sum: CopySummary = await sluiceCopy(`oci:${src}:v1`, `docker://${target.host}/app:v1`, ['--jobs', '1']);
    assert.equal(sum.digest, img.digest);
    assert.equal(sum.bytesSkipped, a.bytes.length);
    assert.equal(sum.bytesSent, b.bytes.length + c.bytes.length + img.config.bytes.length);
    assert.deepEqual(
      sum.blobs.filter((x) => x.action === 'skipped').map((x) => x.digest),
      [a.descriptor.digest],
    );
    await assertIntact(target.url, 'app', 'v1', img);
  } finally {
    child?.kill('SIGKILL');
    await target.kill();
    await s.cleanup();
  }
});
