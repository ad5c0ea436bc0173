import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newEvent } from '../helpers/journal.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeImage, pushBlob, pushImage } from '../helpers/images.js';
import { startEventReceiver } from '../helpers/event-receiver.js';
import { Journal } from '../../src/events/journal.js';
import { journalDir } from '../../src/events/paths.js';
import type { RegistryEvent } from '../../src/events/types.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import type { PutOptions } from '../../src/storage/driver.js';

const NODE = 'test-node';

/** Everything the node's journal holds, read by a journal of its own (as a restarted process would). */
async function journaled(reg: TestRegistry): Promise<RegistryEvent[]> {
  const j = new Journal(reg.ctx.driver, NODE, { maxEvents: 1_000_000 });
  await j.open();
  return j.read(-1, 10_000);
}

test('a push is in the journal once its requests are answered: blobs and the tagged manifest', async (t) => {
  const reg = await startRegistry({ notifications: { journal: { node: NODE } } });
  t.after(() => reg.close());
  const img = await makeImage({ label: 'journal' });
  await pushImage(reg.url, 'team/app', 'v1', img);
  const events = await journaled(reg);
  const pushes = events.filter((e) => e.action === 'push');
  assert.equal(pushes.length, 1 + img.layers.length + 1);
  const manifest = pushes.find((e) => e.target.tag === 'v1');
  assert.ok(manifest, 'the manifest push carries its tag');
  assert.equal(manifest.target.digest, img.digest);
  assert.equal(manifest.target.repository, 'team/app');
  assert.equal(manifest.target.url, `${reg.url}/v2/team/app/manifests/${img.digest}`);
  assert.deepEqual(new Set(events.map((e) => e.seq)).size, events.length, 'every event has its own sequence number');
});

test('requests arriving together share one journal write', async (t) => {
  const reg = await startRegistry({ notifications: { journal: { node: NODE } } });
  t.after(() => reg.close());
  const n = 40;
  await Promise.all(Array.from({ length: n }, () => pushBlob(reg.url, 'team/many', randomBytes(64))));
  const segments = await reg.ctx.driver.list(journalDir(NODE));
  assert.equal((await journaled(reg)).length, n);
  assert.ok(segments.length < n, `${segments.length} writes for ${n} events`);
});

test('a full journal drops its oldest events, counted per endpoint in the metrics', async (t) => {
  const receiver = await startEventReceiver();
  receiver.mode = 'hang';
  t.after(() => receiver.close());
  const reg = await startRegistry({
    notifications: {
      journal: { node: NODE, maxevents: 5 },
      endpoints: [{ name: 'slow', url: receiver.url, timeout: '30s' }],
    },
  });
  t.after(() => reg.close());
  for (let i = 0; i < 12; i++) await pushBlob(reg.url, 'team/full', randomBytes(32));
  // The oldest are removed just after the newest write is answered.
  let events = await journaled(reg);
  for (let i = 0; i < 100 && events.length > 5; i++) {
    await new Promise((r) => setTimeout(r, 50));
    events = await journaled(reg);
  }
  assert.ok(events.length <= 5, `${events.length} events kept`);
  assert.equal(events[events.length - 1]!.seq, 11, 'the newest are kept');
  const metrics = await (await fetch(`${reg.url}/metrics`)).text();
  const dropped = /sluice_events_dropped_total\{endpoint="slow"\} (\d+)/.exec(metrics);
  assert.ok(dropped && Number(dropped[1]) >= 6, `dropped: ${dropped?.[1]}`);
});

test('pulls and deletes are journaled as Distribution sends them (HEAD included, a tag delete per tag)', async (t) => {
  const reg = await startRegistry({ notifications: { journal: { node: NODE, pulls: 'all' } } });
  t.after(() => reg.close());
  const img = await makeImage({ label: 'pulls' });
  await pushImage(reg.url, 'team/p', 'v1', img);
  await (await fetch(`${reg.url}/v2/team/p/manifests/v1`, { method: 'HEAD' })).arrayBuffer();
  await (await fetch(`${reg.url}/v2/team/p/blobs/${img.config.descriptor.digest}`)).arrayBuffer();
  assert.equal((await fetch(`${reg.url}/v2/team/p/manifests/${img.digest}`, { method: 'DELETE' })).status, 202);
  const events = await journaled(reg);
  const pulls = events.filter((e) => e.action === 'pull');
  assert.deepEqual(
    pulls.map((e) => [e.request?.method, e.target.tag ?? null, e.target.mediaType]),
    [
      ['HEAD', 'v1', img.mediaType],
      ['GET', null, 'application/octet-stream'],
    ],
  );
  const deletes = events.filter((e) => e.action === 'delete').map((e) => e.target);
  assert.deepEqual(deletes, [
    { digest: img.digest, repository: 'team/p' },
    { repository: 'team/p', tag: 'v1' },
  ]);
});

test('a batch of pulls is written without a disk flush, a batch with a change with one', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-journal-durable-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const flushed: boolean[] = [];
  // The real driver, recording how the journal asked for each write.
  class Recording extends FilesystemDriver {
    override putContent(path: string, data: Uint8Array, options?: PutOptions): Promise<void> {
      if (path.startsWith(journalDir(NODE))) flushed.push(options?.durable ?? true);
      return super.putContent(path, data, options);
    }
  }
  const journal = new Journal(new Recording(dir), NODE, { maxEvents: 1000 });
  await journal.open();
  await journal.append([newEvent('pull'), newEvent('login.failed')]);
  await journal.append([newEvent('pull'), newEvent('push')]);
  await journal.append([newEvent('tag.moved')]);
  assert.deepEqual(flushed, [false, true, true]);
  assert.equal((await journal.read(-1, 10)).length, 5);
});
