import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { isBlobFolder } from '../../src/storage/layout.js';

const V2 = 'docker/registry/v2';
const hex = (prefix = '') => prefix + randomBytes(32).toString('hex').slice(prefix.length);
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

test('the sweep removes old temporary files and old empty blob folders, and nothing else', async () => {
  const root = await mkdtemp(join(tmpdir(), 'sluice-sweep-'));
  try {
    const at = (rel: string) => join(root, rel);
    const file = async (rel: string, body = 'x') => {
      await mkdir(dirname(at(rel)), { recursive: true });
      await writeFile(at(rel), body);
    };
    const hour = new Date(Date.now() - 3600_000);
    const age = (rel: string) => utimes(at(rel), hour, hour);

    const blob = `${V2}/blobs/sha256/ab/${hex('ab')}`;
    await file(`${blob}/data`, 'real bytes');
    const emptyOld = `${V2}/blobs/sha256/cd/${hex('cd')}`;
    const emptyYoung = `${V2}/blobs/sha256/ef/${hex('ef')}`;
    await mkdir(at(emptyOld), { recursive: true });
    await mkdir(at(emptyYoung), { recursive: true });
    // A crash between writing a manifest's temporary file and its rename.
    const halfWritten = `${V2}/blobs/sha256/12/${hex('12')}`;
    const halfTmp = `${halfWritten}/data.tmp-${randomUUID()}`;
    await file(halfTmp, 'partial');
    const linkDir = `${V2}/repositories/r/_layers/sha256/${hex()}`;
    await file(`${linkDir}/link`, 'sha256:abc');
    const oldLinkTmp = `${linkDir}/link.tmp-${randomUUID()}`;
    await file(oldLinkTmp);
    const youngLinkTmp = `${V2}/repositories/r/_manifests/tags/v1/current/link.tmp-${randomUUID()}`;
    await file(youngLinkTmp);
    const notOurs = `${V2}/repositories/r/_manifests/notes.tmp-1`;
    await file(notOurs);
    // Empty directories outside blob folders mean something to Distribution's walk: they stay.
    const emptyRepoDir = `${V2}/repositories/empty/_uploads`;
    await mkdir(at(emptyRepoDir), { recursive: true });
    const emptyLinkDir = `${V2}/repositories/r/_layers/sha256/${hex()}`;
    await mkdir(at(emptyLinkDir), { recursive: true });

    for (const p of [
      `${blob}/data`,
      blob,
      emptyOld,
      halfTmp,
      halfWritten,
      oldLinkTmp,
      notOurs,
      emptyRepoDir,
      emptyLinkDir,
    ])
      await age(p);

    const driver = new FilesystemDriver(root);
    const removed = await driver.sweep(new Date(Date.now() - 10 * 60_000), isBlobFolder);

    assert.deepEqual(new Set(removed), new Set([emptyOld, halfTmp, halfWritten, oldLinkTmp]));
    for (const gone of [emptyOld, halfWritten, oldLinkTmp]) assert.equal(await exists(at(gone)), false, gone);
    for (const kept of [emptyYoung, youngLinkTmp, notOurs, emptyRepoDir, emptyLinkDir, `${linkDir}/link`])
      assert.equal(await exists(at(kept)), true, kept);
    assert.equal(await readFile(at(`${blob}/data`), 'utf8'), 'real bytes');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('isBlobFolder names only a blob’s own folder', () => {
  const h = hex('ab');
  assert.equal(isBlobFolder(`${V2}/blobs/sha256/ab/${h}`), true);
  assert.equal(isBlobFolder(`${V2}/blobs/sha256/cd/${h}`), false);
  assert.equal(isBlobFolder(`${V2}/blobs/sha256/ab`), false);
  assert.equal(isBlobFolder(`${V2}/blobs/sha256/ab/${h}/data`), false);
  assert.equal(isBlobFolder(`${V2}/repositories/ab/${h}`), false);
});

test('putContent leaves no temporary file behind when the write fails, and none when it succeeds', async () => {
  const root = await mkdtemp(join(tmpdir(), 'sluice-sweep-'));
  try {
    const driver = new FilesystemDriver(root);
    await driver.putContent('a/b/link', Buffer.from('one'));
    await driver.putContent('a/b/link', Buffer.from('two'));
    assert.deepEqual(await driver.list('a/b'), ['link']);
    assert.equal((await driver.getContent('a/b/link'))!.toString(), 'two');
    // A directory where the file should go makes the rename fail after the temporary file was written.
    await mkdir(join(root, 'a/c/link/inside'), { recursive: true });
    await assert.rejects(driver.putContent('a/c/link', Buffer.from('x')));
    assert.deepEqual(await driver.list('a/c'), ['link']);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
