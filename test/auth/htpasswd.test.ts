import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { HtpasswdStore, bcryptStats } from '../../src/auth/htpasswd.js';

test('a verified password is remembered briefly; wrong ones and changed files always cost a full check', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-htpasswd-'));
  try {
    const file = join(dir, 'users');
    await writeFile(file, `alice:${bcrypt.hashSync('one', 4)}\n`);
    const store = new HtpasswdStore(file);
    t.after(() => store.close());
    const count = async (fn: () => Promise<boolean>) => {
      const before = bcryptStats.compares;
      const ok = await fn();
      return { ok, compares: bcryptStats.compares - before };
    };
    assert.deepEqual(await count(() => store.verify('alice', 'one')), { ok: true, compares: 1 });
    assert.deepEqual(await count(() => store.verify('alice', 'one')), { ok: true, compares: 0 });
    assert.deepEqual(await count(() => store.verify('alice', 'two')), { ok: false, compares: 1 });
    assert.deepEqual(await count(() => store.verify('alice', 'two')), { ok: false, compares: 1 });
    assert.deepEqual(await count(() => store.verify('bob', 'one')), { ok: false, compares: 1 });
    // The password changes: the old one must stop working at once, not after the cache expires.
    await writeFile(file, `alice:${bcrypt.hashSync('two', 4)}\n`);
    await utimes(file, new Date(), new Date(Date.now() + 5000));
    assert.deepEqual(await count(() => store.verify('alice', 'one')), { ok: false, compares: 1 });
    assert.deepEqual(await count(() => store.verify('alice', 'two')), { ok: true, compares: 1 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a password change is noticed even when the file keeps its size and modification time', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-htpasswd-'));
  const file = join(dir, 'users');
  try {
    // A whole second an hour ago, so putting it back is exact.
    const when = Math.floor(Date.now() / 1000) - 3600;
    await writeFile(file, `alice:${bcrypt.hashSync('one', 4)}\n`);
    await utimes(file, when, when);
    const s = new HtpasswdStore(file);
    try {
      assert.equal(await s.verify('alice', 'one'), true);
      const before = await stat(file);
      // Same length, written in place, and the old mtime put back (as a copy tool or a coarse clock would leave it).
      await writeFile(file, `alice:${bcrypt.hashSync('two', 4)}\n`);
      await utimes(file, when, when);
      const after = await stat(file);
      assert.equal(after.mtimeMs, before.mtimeMs);
      assert.equal(after.size, before.size);
      assert.equal(await s.verify('alice', 'one'), false, 'the old password must stop working at once');
      assert.equal(await s.verify('alice', 'two'), true);
    } finally {
      await s.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
