import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { filesystemOnly, startRegistry } from '../helpers/registry.js';
import { makeImage, pushImage, type TestImage } from '../helpers/images.js';
import { startEventReceiver } from '../helpers/event-receiver.js';
import { sluice } from '../helpers/sluice-cli.js';
import { basic, startAuthRegistry, USERS } from '../auth/fixture.js';
import { digestOf } from '../../src/oci/digest.js';

type Json = Record<string, unknown>;

/** Pushes an image with Basic credentials (blobs monolithically, then the manifest). */
async function pushAs(url: string, auth: string, repo: string, tag: string, img: TestImage): Promise<void> {
  for (const b of [img.config, ...img.layers]) {
    const r = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digestOf(b.bytes)}`, {
      method: 'POST',
      body: b.bytes,
      headers: { authorization: auth },
    });
    assert.equal(r.status, 201, `${repo} blob: ${await r.text()}`);
  }
  const r = await fetch(`${url}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    body: img.manifest,
    headers: { authorization: auth, 'content-type': img.mediaType },
  });
  assert.equal(r.status, 201, `${repo} manifest: ${await r.text()}`);
}

async function eventsAs(
  url: string,
  auth: string | undefined,
  query = '',
): Promise<{ status: number; repos: string[]; body: Json }> {
  const r = await fetch(`${url}/api/v1/events${query}`, auth ? { headers: { authorization: auth } } : {});
  const body = (await r.json()) as Json;
  const events = (body['events'] as { target: { repository?: string } }[] | undefined) ?? [];
  return { status: r.status, repos: [...new Set(events.map((e) => e.target.repository ?? '-'))].sort(), body };
}

test('GET /api/v1/events shows each caller only the events of repositories it may pull', async (t) => {
  const fx = await startAuthRegistry({ config: { notifications: { journal: { node: 'api' } } } });
  t.after(() => fx.close());
  const url = fx.reg.url;
  const alice = basic('alice', USERS.alice);
  const bob = basic('bob', USERS.bob);
  const img = await makeImage({ label: 'api' });
  await pushAs(url, alice, 'team-a/app', 'v1', img);
  await pushAs(url, alice, 'alice/x', 'v1', img);
  await pushAs(url, bob, 'bob/y', 'v1', img);
  assert.deepEqual((await eventsAs(url, alice)).repos, ['alice/x', 'team-a/app']);
  assert.deepEqual((await eventsAs(url, bob)).repos, ['bob/y']);
  assert.equal((await eventsAs(url, undefined)).status, 401);
  const later = new Date(Date.now() + 60_000).toISOString();
  assert.deepEqual((await eventsAs(url, alice, `?since=${later}`)).repos, []);
  const page = await eventsAs(url, alice, '?limit=2');
  assert.equal((page.body['events'] as unknown[]).length, 2);
  const rest = await eventsAs(url, alice, `?after=${String(page.body['next'])}`);
  assert.equal((rest.body['events'] as unknown[]).length, 2 * (2 + img.layers.length) - 2);
});

test('sluice events status and replay read the journal and cursors in storage', async (t) => {
  if (filesystemOnly(t, 'the CLI is pointed at the root with --root')) return;
  const receiver = await startEventReceiver();
  t.after(() => receiver.close());
  const notifications = {
    journal: { node: 'cli' },
    endpoints: [{ name: 'hook', url: receiver.url, threshold: 0, backoff: '20ms' }],
  };
  const reg = await startRegistry({ notifications });
  const img = await makeImage({ label: 'cli' });
  await pushImage(reg.url, 'team/cli', 'v1', img);
  const n = 2 + img.layers.length;
  await receiver.waitFor(n);
  // The receiver counts an event as it answers; the worker counts it once the answer is back: wait for that.
  const worker = reg.ctx.events!.workers[0]!;
  for (let i = 0; i < 250 && worker.state.delivered < n; i++) await new Promise((r) => setTimeout(r, 20));
  await reg.app.close();
  const cfg = join(reg.root, 'config.yml');
  await writeFile(cfg, JSON.stringify({ log: { level: 'silent' }, notifications }));
  t.after(() => reg.close());
  const status = await sluice(['events', 'status', '-c', cfg, '--root', reg.root, '--json']);
  assert.equal(status.code, 0, status.stderr);
  const [row] = JSON.parse(status.stdout) as Json[];
  assert.deepEqual(
    [row!['endpoint'], row!['node'], row!['delivered'], row!['pending'], row!['dead']],
    ['hook', 'cli', n, 0, 0],
  );
  const replay = await sluice([
    'events',
    'replay',
    '-c',
    cfg,
    '--root',
    reg.root,
    '--endpoint',
    'hook',
    '--since',
    '1h',
  ]);
  assert.equal(replay.code, 0, replay.stderr);
  assert.match(replay.stdout, new RegExp(`replayed ${n} events`));
  const ids = receiver.events().map((e) => e['id']);
  assert.equal(ids.length, 2 * n);
  assert.deepEqual(ids.slice(n), ids.slice(0, n), 'a replay sends the same ids, so receivers can deduplicate');
  const none = await sluice(['events', 'replay', '-c', cfg, '--root', reg.root, '--endpoint', 'nope', '--since', '1h']);
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /no endpoint named "nope"/);
});
