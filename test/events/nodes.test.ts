import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startS3 } from '../helpers/s3.js';
import { startS3Node } from '../helpers/s3-nodes.js';
import { scratch } from '../helpers/clients.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { startEventReceiver } from '../helpers/event-receiver.js';
import { sluice } from '../helpers/sluice-cli.js';

interface ApiEvent {
  id: string;
  node: string;
  seq: number;
  timestamp: string;
  action?: string;
  target: { repository?: string; tag?: string };
}

/** Every page of GET /api/v1/events from one node, `limit` at a time, following `next`. */
async function walk(url: string, limit: number, first = ''): Promise<{ events: ApiEvent[]; next: string }> {
  const events: ApiEvent[] = [];
  let query = first;
  for (let page = 0; page < 100; page++) {
    const r = await fetch(`${url}/api/v1/events?limit=${limit}${query}`);
    assert.equal(r.status, 200, await r.clone().text());
    const body = (await r.json()) as { events: ApiEvent[]; next: string };
    events.push(...body.events);
    if (body.events.length === 0) return { events, next: body.next };
    query = `&after=${encodeURIComponent(body.next)}`;
  }
  throw new Error('more than 100 pages');
}

test('GET /api/v1/events and events replay read both journals of two nodes on one bucket, in time order', async (t) => {
  const s3 = await startS3('events-nodes');
  t.after(() => s3.close());
  const work = await scratch('sluice-events-nodes-');
  t.after(() => work.cleanup());
  const receiver = await startEventReceiver();
  t.after(() => receiver.close());
  const root = 'cluster';
  const node = (name: string) => ({ journal: { node: name } });
  const a = await startS3Node(s3, work.dir, { key: 'NODEA', root, config: { notifications: node('a') } });
  t.after(() => a.stop());
  const b = await startS3Node(s3, work.dir, { key: 'NODEB', root, config: { notifications: node('b') } });
  t.after(() => b.stop());
  // Pushes alternate between the nodes, so time order interleaves the two journals.
  const order: string[] = [];
  for (let i = 0; i < 4; i++) {
    const on = i % 2 === 0 ? a : b;
    await pushImage(on.url, `team/app${i}`, 'v1', await makeImage({ label: `nodes-${i}` }));
    order.push(`team/app${i}`);
  }
  for (const n of [a, b]) {
    const { events } = await walk(n.url, 1000);
    assert.deepEqual(new Set(events.map((e) => e.node)), new Set(['a', 'b']), `node ${n.url} reads both journals`);
    const tagged = events.filter((e) => e.action === 'push' && e.target.tag === 'v1').map((e) => e.target.repository);
    assert.deepEqual(tagged, order, 'manifest pushes come in the order they happened, whichever node took them');
    const times = events.map((e) => e.timestamp);
    assert.deepEqual(times, [...times].sort(), 'merged oldest first');
    // Small pages reach the same events, each once: the cursor says where it is in each journal.
    const paged = await walk(n.url, 3);
    assert.deepEqual(
      paged.events.map((e) => e.id),
      events.map((e) => e.id),
    );
    assert.match(paged.next, /^a:\d+,b:\d+$/);
  }
  // Events a node writes after a reader's last page come with its next page, from either node.
  const { events: before, next } = await walk(a.url, 1000);
  await pushImage(b.url, 'team/late', 'v1', await makeImage({ label: 'nodes-late' }));
  const later = await walk(a.url, 1000, `&after=${encodeURIComponent(next)}`);
  assert.ok(
    later.events.length > 0 && later.events.every((e) => e.node === 'b' && e.target.repository === 'team/late'),
  );
  assert.equal(new Set([...before, ...later.events].map((e) => e.id)).size, before.length + later.events.length);
  // since= starts each journal at the time given.
  const none = await walk(a.url, 1000, `&since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
  assert.equal(none.events.length, 0);
  assert.equal((await fetch(`${a.url}/api/v1/events?after=a:x`)).status, 400);

  // The CLI replays both nodes' journals in the same order.
  const cfg = join(work.dir, 'replay.yml');
  const storage = { s3: s3.config(root), delete: { enabled: true } };
  const endpoint = { name: 'hook', url: receiver.url, threshold: 0, backoff: '20ms' };
  await writeFile(
    cfg,
    JSON.stringify({
      log: { level: 'silent' },
      storage,
      notifications: { journal: { node: 'a' }, endpoints: [endpoint] },
    }),
  );
  const replay = await sluice(['events', 'replay', '-c', cfg, '--endpoint', 'hook', '--since', '1h']);
  assert.equal(replay.code, 0, replay.stderr);
  const all = [...before, ...later.events];
  assert.match(replay.stdout, new RegExp(`replayed ${all.length} events`));
  assert.deepEqual(
    receiver.events().map((e) => e['id']),
    all.map((e) => e.id),
  );
  const onlyB = await sluice(['events', 'replay', '-c', cfg, '--endpoint', 'hook', '--since', '1h', '--node', 'b']);
  assert.equal(onlyB.code, 0, onlyB.stderr);
  assert.match(onlyB.stdout, new RegExp(`replayed ${all.filter((e) => e.node === 'b').length} events`));
});
