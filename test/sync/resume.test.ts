import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRegistry } from '../helpers/registry.js';
import { startThrottleProxy } from '../helpers/throttle-proxy.js';
import { makeImage, pushImage, type TestImage } from '../helpers/images.js';
import { assertIntact } from '../helpers/oci-http.js';
import { SLUICE_BIN, sluice } from '../helpers/sluice-cli.js';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** Where a blob's bytes live once complete (Distribution's layout). */
function blobData(root: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
}

test('a sync killed in the middle of an image resumes: finished images are only HEADed, blobs that arrived are not fetched again', async () => {
  const up = await startRegistry();
  const proxy = await startThrottleProxy(up.url);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-sync-kill-'));
  const root = join(dir, 'data');
  try {
    const images: TestImage[] = [];
    for (const tag of ['1', '2', '3']) {
      // A small layer that arrives at once and a large one that takes seconds through the proxy.
      const img = await makeImage({
        layers: [{ 'small.txt': `small ${tag}` }, { 'big.bin': randomBytes(3 * 1024 * 1024) }],
        label: `kill-${tag}`,
      });
      await pushImage(up.url, 'library/big', tag, img);
      images.push(img);
    }
    const [one, two] = images as [TestImage, TestImage, TestImage];
    const cfg = join(dir, 'config.yml');
    await writeFile(
      cfg,
      [
        'storage: {filesystem: {rootdirectory: ./data}}',
        `upstreams: {docker.io: {url: "${proxy.url}"}}`,
        'flows: [{images: ["docker.io/library/*"]}]',
        'mirrors:',
        '  - name: big',
        '    images: [docker.io/library/big]',
        '    tags: {include: ["1", "2", "3"]}',
        // One image at a time, so that the kill finds image 1 done and image 2 half there.
        '    parallel: 1',
        '',
      ].join('\n'),
    );
    proxy.slow = { over: 1024 * 1024, bytesPerSecond: 2 * 1024 * 1024 };
    const child = spawn(process.execPath, [SLUICE_BIN, 'sync', '-c', cfg, '--json'], { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const bigOfTwo = two.layers[1]!.descriptor.digest;
    const arrivedOfTwo = [two.layers[0]!.descriptor.digest, two.config.descriptor.digest];
    // Kill once image 1 is recorded and image 2 is half there: its small blobs stored, its large one on the wire.
    const deadline = Date.now() + 60_000;
    for (;;) {
      assert.ok(
        Date.now() < deadline,
        `never reached the middle of image 2:\n${proxy.seen.map((s) => `${s.method} ${s.path} ${s.bytes}`).join('\n')}`,
      );
      assert.equal(child.exitCode, null, 'the sync ended before it could be killed');
      const state = await readFile(join(root, 'docker/registry/v2/_sluice/sync/big.json'), 'utf8').then(
        (t) => JSON.parse(t) as { tags: Record<string, string> },
        () => ({ tags: {} as Record<string, string> }),
      );
      const midBlob = proxy.seen.find(
        (s) => s.method === 'GET' && s.path.endsWith(bigOfTwo) && s.bytes > 256 * 1024 && !s.done,
      );
      const stored = await Promise.all(arrivedOfTwo.map((d) => exists(blobData(root, d))));
      if (state.tags['library/big:1'] === one.digest && midBlob && stored.every(Boolean)) break;
      await sleep(25);
    }
    child.kill('SIGKILL');
    await exited;
    assert.equal(
      await exists(blobData(root, bigOfTwo)),
      false,
      'the large blob of image 2 was not complete when the run was killed',
    );

    proxy.seen.length = 0;
    proxy.slow = undefined;
    const again = await sluice(['sync', '-c', cfg, '--json']);
    assert.equal(again.code, 0, again.stderr);
    const [summary] = JSON.parse(again.stdout) as { copied: string[]; unchanged: number }[];
    assert.equal(summary!.unchanged, 1);
    assert.deepEqual(summary!.copied.sort(), ['docker.io/library/big:2', 'docker.io/library/big:3']);
    const gets = proxy.seen.filter((s) => s.method === 'GET').map((s) => s.path);
    // Image 1: a HEAD of its tag and nothing else.
    for (const d of [one.digest, one.config.descriptor.digest, ...one.layers.map((l) => l.descriptor.digest)]) {
      assert.ok(!gets.some((p) => p.endsWith(d)), `image 1 (${d}) fetched again:\n${gets.join('\n')}`);
    }
    assert.ok(proxy.seen.some((s) => s.method === 'HEAD' && s.path === '/v2/library/big/manifests/1'));
    // Image 2: what arrived stays, only the cut blob travels again, once.
    for (const d of arrivedOfTwo)
      assert.ok(!gets.some((p) => p.endsWith(d)), `blob ${d} of image 2 fetched again:\n${gets.join('\n')}`);
    assert.equal(gets.filter((p) => p.endsWith(bigOfTwo)).length, 1);
    const reg = await startRegistry({}, root);
    try {
      for (const [i, img] of images.entries()) await assertIntact(reg.url, 'docker.io/library/big', String(i + 1), img);
    } finally {
      await reg.app.close();
    }
  } finally {
    await proxy.close();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  }
});
