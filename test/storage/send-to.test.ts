import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { FilesystemDriver } from '../../src/storage/filesystem.js';

test('sendTo leaves no listener behind per call: a reader that takes a blob in many ranges does not pile them up', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-sendto-'));
  try {
    const driver = new FilesystemDriver(dir);
    const data = Buffer.from('0123456789'.repeat(100));
    await driver.putContent('blob', data);
    const out = new PassThrough();
    const got: Buffer[] = [];
    out.on('data', (c: Buffer) => got.push(c));
    const before = { close: out.listenerCount('close'), error: out.listenerCount('error') };
    for (let i = 0; i < 50; i++) await driver.sendTo('blob', out, i * 20, 20);
    assert.deepEqual(Buffer.concat(got), data.subarray(0, 1000));
    assert.equal(out.listenerCount('close'), before.close);
    // One shared listener stays for errors a response reports after its write failed.
    assert.ok(out.listenerCount('error') <= before.error + 1, `error listeners: ${out.listenerCount('error')}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
