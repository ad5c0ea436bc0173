import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { checkStorageAtStart, StorageHealth } from '../../src/storage/health.js';
import type { StorageDriver } from '../../src/storage/driver.js';

/** A filesystem driver that counts probe writes and can be told to fail them. */
function counting(root: string): { driver: StorageDriver; writes: () => number; fail: (code: string | null) => void } {
  const inner = new FilesystemDriver(root);
  let writes = 0;
  let failing: string | null = null;
  const driver = Object.create(inner) as FilesystemDriver;
  driver.putContent = async (path, data) => {
    writes++;
    if (failing) throw Object.assign(new Error(`${failing}: refused`), { code: failing });
    return inner.putContent(path, data);
  };
  return { driver, writes: () => writes, fail: (code) => (failing = code) };
}

test('the health probe writes at most once per interval; callers in between share its answer', async () => {
  const root = await mkdtemp(join(tmpdir(), 'sluice-health-'));
  try {
    const c = counting(root);
    const health = new StorageHealth(c.driver, false, 200);
    await Promise.all(Array.from({ length: 20 }, () => health.check()));
    await health.check();
    assert.equal(c.writes(), 1);
    c.fail('EROFS');
    // Still the cached success until the interval has passed ...
    await health.check();
    assert.equal(c.writes(), 1);
    await sleep(250);
    // ... then one new probe, which fails with where and why.
    await assert.rejects(health.check(), {
      message: `storage.filesystem.rootdirectory: ${root} is not writable (EROFS)`,
    });
    await assert.rejects(health.check(), /not writable/);
    assert.equal(c.writes(), 2);
    // The probe cleans up after itself.
    assert.deepEqual(await c.driver.list('docker/registry/v2'), []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a read-only registry only reads: no probe write, and an unwritable root is fine at start', async () => {
  const root = await mkdtemp(join(tmpdir(), 'sluice-health-'));
  try {
    const c = counting(root);
    c.fail('EACCES');
    await new StorageHealth(c.driver, true, 10).check();
    assert.equal(await checkStorageAtStart(c.driver, true), undefined);
    assert.equal(c.writes(), 0);
    await assert.rejects(checkStorageAtStart(c.driver, false), {
      message: `storage.filesystem.rootdirectory: ${root} is not writable (EACCES)`,
    });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('at start, a full disk is a warning (pulls still work), a root that is a file is refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-health-'));
  try {
    const c = counting(dir);
    c.fail('ENOSPC');
    assert.match(
      (await checkStorageAtStart(c.driver, false))!,
      /is not writable \(ENOSPC: no space left\): pushes will fail/,
    );
    const file = join(dir, 'file');
    await writeFile(file, 'x');
    await assert.rejects(checkStorageAtStart(new FilesystemDriver(file), true), {
      message: `storage.filesystem.rootdirectory: ${file} is not a directory`,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
