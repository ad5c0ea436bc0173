import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newEvent } from '../helpers/journal.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeImage, pushBlob, pushImage } from '../helpers/images.js';
import { Journal } from '../../src/events/journal.js';
import { journalDir } from '../../src/events/paths.js';
import type { RegistryEvent } from '../../src/events/types.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';

// The journal on a filesystem appends to one open segment, and pulls are journaled only when wanted.
const NODE = 'append-node';
/** A port nothing listens on: the endpoint is only there for its filters. */
const NOWHERE = 'http://127.0.0.1:9/hook';

async function journaled(reg: TestRegistry): Promise<RegistryEvent[]> {
  const j = new Journal(reg.ctx.driver, NODE, { maxEvents: 1_000_000 });
  await j.open();
  return j.read(-1, 10_000);
}

test('a pull is journaled only when an endpoint would send it, unless journal.pulls is all', async (t) => {
  const img = await makeImage({ label: 'wanted-pulls' });
  const pullsOf = async (notifications: Record<string, unknown>) => {
    const reg = await startRegistry({ notifications: { journal: { node: NODE }, ...notifications } });
    t.after(() => reg.close());
    await pushImage(reg.url, 'team/app', 'v1', img);
    await pushImage(reg.url, 'other/app', 'v1', img);
    for (const repo of ['team/app', 'other/app'])
      assert.equal(
        (await fetch(`${reg.url}/v2/${repo}/manifests/v1`, { headers: { accept: img.mediaType } })).status,
        200,
      );
    const events = await journaled(reg);
    assert.ok(
      events.some((e) => e.type === 'push'),
      'pushes are journaled whatever the endpoints want',
    );
    return events.filter((e) => e.type === 'pull').map((e) => e.target.repository);
  };
  assert.deepEqual(await pullsOf({ endpoints: [{ name: 'ci', url: NOWHERE, ignore: { actions: ['pull'] } }] }), []);
  assert.deepEqual(await pullsOf({}), []);
  assert.deepEqual(
    await pullsOf({
      endpoints: [
        { name: 'ci', url: NOWHERE, ignore: { actions: ['pull'] } },
        { name: 'audit', url: NOWHERE, format: 'cloudevents', repositories: ['team/**'] },
      ],
    }),
    ['team/app'],
  );
  assert.deepEqual(await pullsOf({ journal: { node: NODE, pulls: 'all' } }), ['team/app', 'other/app']);
});

test('on a filesystem one request after another appends to one open segment, sealed at close; the next process numbers on', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-journal-append-'));
  const started: TestRegistry[] = [];
  // Closed (again: closing twice is harmless) before the folder goes, also when an assertion failed.
  t.after(async () => {
    for (const r of started) await r.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  const files = () => readdir(join(dir, journalDir(NODE)));
  // The filesystem driver's journal, whichever storage the suite runs on.
  const config = { storage: { filesystem: { rootdirectory: dir } }, notifications: { journal: { node: NODE } } };
  const reg = await startRegistry(config, dir);
  started.push(reg);
  for (let i = 0; i < 10; i++) await pushBlob(reg.url, 'team/seq', randomBytes(32));
  assert.deepEqual(await files(), ['0000000000000000-open.jsonl']);
  // Another process (sluice events) reads the open segment as it is, and leaves it open.
  assert.deepEqual(
    (await journaled(reg)).map((e) => e.seq),
    [...Array(10).keys()],
  );
  assert.deepEqual(await files(), ['0000000000000000-open.jsonl']);
  await reg.close();
  const sealed = await files();
  assert.equal(sealed.length, 1);
  assert.match(sealed[0]!, /^0000000000000000-10-\d+\.jsonl$/);
  const again = await startRegistry(config, dir);
  started.push(again);
  await pushBlob(again.url, 'team/seq', randomBytes(32));
  const events = await journaled(again);
  const openNow = await files();
  await again.close();
  assert.deepEqual(
    events.map((e) => e.seq),
    [...Array(11).keys()],
  );
  assert.ok(openNow.includes('0000000000000010-open.jsonl'), openNow.join(' '));
});

test('after a crash the next writer seals the open segment with its complete lines; a reader leaves it open', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-journal-crash-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const driver = new FilesystemDriver(dir);
  const crashed = new Journal(driver, NODE, { maxEvents: 1000, writer: true });
  await crashed.open();
  for (const type of ['push', 'pull', 'delete'] as const) await crashed.append([newEvent(type)]);
  // The process dies in the middle of the next write: a torn line, and never a close.
  const open = join(dir, journalDir(NODE), '0000000000000000-open.jsonl');
  await appendFile(open, '{"id":"torn","type":"pu');

  const reader = new Journal(driver, NODE, { maxEvents: 1000 });
  await reader.open();
  assert.deepEqual(
    (await reader.read(-1, 10)).map((e) => e.type),
    ['push', 'pull', 'delete'],
  );
  assert.deepEqual(await readdir(join(dir, journalDir(NODE))), ['0000000000000000-open.jsonl']);

  const next = new Journal(driver, NODE, { maxEvents: 1000, writer: true });
  await next.open();
  const names = await readdir(join(dir, journalDir(NODE)));
  assert.equal(names.length, 1);
  assert.match(names[0]!, /^0000000000000000-3-\d+\.jsonl$/);
  await next.append([newEvent('tag.moved')]);
  assert.deepEqual(
    (await next.read(-1, 10)).map((e) => [e.seq, e.type]),
    [
      [0, 'push'],
      [1, 'pull'],
      [2, 'delete'],
      [3, 'tag.moved'],
    ],
  );
  // The reader, opened before the seal, still finds the events under their final name.
  const fresh = new Journal(driver, NODE, { maxEvents: 1000 });
  await fresh.open();
  assert.equal((await fresh.read(-1, 10)).length, 4);
  await next.close();
});

test('an open segment is sealed when full, so the bound on events can drop whole segments', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-journal-full-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const driver = new FilesystemDriver(dir);
  const dropped: number[][] = [];
  const j = new Journal(driver, NODE, { maxEvents: 8, writer: true, onDrop: (a, b) => dropped.push([a, b]) });
  await j.open();
  for (let i = 0; i < 11; i++) await j.append([newEvent('push')]);
  const open = (await readdir(join(dir, journalDir(NODE)))).filter((n) => n.endsWith('-open.jsonl'));
  assert.deepEqual(open, ['0000000000000010-open.jsonl']);
  // Waits for the bound to be enforced after the last write, and seals the open segment.
  await j.close();
  // Two events per segment (a quarter of the bound): 0-1 and 2-3 went.
  assert.deepEqual(dropped, [
    [0, 1],
    [2, 3],
  ]);
  const names = (await readdir(join(dir, journalDir(NODE)))).sort();
  assert.deepEqual(
    names.map((n) => n.replace(/-\d+\.jsonl$/, '')),
    ['0000000000000004-2', '0000000000000006-2', '0000000000000008-2', '0000000000000010-1'],
  );
  assert.deepEqual(
    (await j.read(-1, 100)).map((e) => e.seq),
    [4, 5, 6, 7, 8, 9, 10],
  );
});
