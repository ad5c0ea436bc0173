import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, pushBlob, pushImage } from '../helpers/images.js';
import { startEventReceiver } from '../helpers/event-receiver.js';
import { deadDir } from '../../src/events/paths.js';
import { signature } from '../../src/events/sign.js';

const NODE = 'test-node';
const SECRET = `whsec_${randomBytes(24).toString('base64')}`;

/** Config of one endpoint at `url`, quick to retry; `extra` overrides. */
function endpoint(url: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'hook', url, timeout: '2s', threshold: 0, backoff: '20ms', maxbackoff: '100ms', ...extra };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("a push is delivered in Distribution's envelope, signed as Standard Webhooks, with the configured headers", async (t) => {
  const receiver = await startEventReceiver({ secret: SECRET });
  t.after(() => receiver.close());
  const reg = await startRegistry({
    notifications: {
      journal: { node: NODE },
      events: { includereferences: true },
      endpoints: [endpoint(receiver.url, { secret: SECRET, headers: { Authorization: ['Bearer ci-token'] } })],
    },
  });
  t.after(() => reg.close());
  const img = await makeImage({ label: 'delivered' });
  await pushImage(reg.url, 'team/app', 'v1', img);
  await receiver.waitFor(2 + img.layers.length);
  for (const d of receiver.deliveries) {
    assert.equal(d.headers['content-type'], 'application/vnd.docker.distribution.events.v2+json');
    assert.equal(d.headers['authorization'], 'Bearer ci-token');
    assert.equal(d.signed, true, 'the signature verifies with the endpoint secret');
    assert.equal(d.headers['webhook-id'], (d.json['events'] as { id: string }[])[0]!.id, 'webhook-id is the event id');
  }
  const manifest = receiver.events().find((e) => (e['target'] as { tag?: string }).tag === 'v1')!;
  assert.deepEqual(Object.keys(manifest), ['id', 'timestamp', 'action', 'target', 'request', 'actor', 'source']);
  const target = manifest['target'] as Record<string, unknown>;
  assert.equal(target['digest'], img.digest);
  assert.equal(target['size'], img.manifest.length);
  assert.equal(target['length'], img.manifest.length);
  assert.equal((target['references'] as unknown[]).length, 1 + img.layers.length);
  assert.equal((manifest['request'] as { method: string }).method, 'PUT');
  // A body changed on the way no longer matches its signature.
  const d = receiver.deliveries[0]!;
  const ts = Number(d.headers['webhook-timestamp']);
  assert.notEqual(signature(SECRET, String(d.headers['webhook-id']), ts, d.body + ' '), d.headers['webhook-signature']);
});

test('a failing endpoint gets the event again until it answers, and is then no longer failing', async (t) => {
  const receiver = await startEventReceiver();
  receiver.mode = { status: 503 };
  t.after(() => receiver.close());
  const reg = await startRegistry({ notifications: { journal: { node: NODE }, endpoints: [endpoint(receiver.url)] } });
  t.after(() => reg.close());
  await pushBlob(reg.url, 'team/retry', randomBytes(100));
  await until(() => receiver.attempts >= 3, 'three failed tries');
  receiver.mode = 'ok';
  await receiver.waitFor(1);
  const status = await (await fetch(`${reg.url}/metrics`)).text();
  assert.match(status, /sluice_events_delivery_failures_total\{endpoint="hook"\} [3-9]/);
  const [w] = reg.ctx.events!.workers;
  await until(() => w!.state.failingSince === undefined, 'failing state cleared');
  assert.equal(receiver.events().length, 1);
});

test('an endpoint that never answers slows no push and holds one connection at a time', async (t) => {
  const receiver = await startEventReceiver();
  receiver.mode = 'hang';
  t.after(() => receiver.close());
  const dead = 'http://127.0.0.1:9/never';
  const reg = await startRegistry({
    notifications: {
      journal: { node: NODE },
      endpoints: [
        endpoint(receiver.url, { name: 'slow', timeout: '60s' }),
        endpoint(dead, { name: 'dead', backoff: '1s', maxbackoff: '5s' }),
      ],
    },
  });
  t.after(() => reg.close());
  // Were a push to wait for a delivery, it would wait out the 60 s timeout; each one answers well before.
  let slowest = 0;
  for (let i = 0; i < 30; i++) {
    const started = Date.now();
    await pushBlob(reg.url, 'team/fast', randomBytes(1000));
    slowest = Math.max(slowest, Date.now() - started);
  }
  assert.ok(slowest < 15_000, `the slowest push took ${slowest} ms`);
  await until(() => receiver.held() === 1, 'the first delivery held open');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(receiver.held(), 1, 'no second request while the first is unanswered');
  assert.equal(reg.ctx.events!.workers[0]!.pending(), 30);
});

test('an event past maxtries is set aside as a dead letter and the next one is delivered', async (t) => {
  const receiver = await startEventReceiver();
  receiver.mode = { status: 500 };
  t.after(() => receiver.close());
  const reg = await startRegistry({
    notifications: { journal: { node: NODE }, endpoints: [endpoint(receiver.url, { maxtries: 2 })] },
  });
  t.after(() => reg.close());
  await pushBlob(reg.url, 'team/dead', randomBytes(10));
  await until(async () => (await reg.ctx.driver.list(deadDir(NODE, 'hook'))).length === 1, 'a dead letter');
  assert.equal(receiver.attempts, 2);
  receiver.mode = 'ok';
  const d = await pushBlob(reg.url, 'team/dead', randomBytes(10));
  await receiver.waitFor(1);
  assert.equal((receiver.events()[0]!['target'] as { digest: string }).digest, d);
});

test('ignore.actions and ignoredmediatypes are read as Distribution reads them', async (t) => {
  const receiver = await startEventReceiver();
  t.after(() => receiver.close());
  const reg = await startRegistry({
    notifications: {
      journal: { node: NODE },
      endpoints: [
        endpoint(receiver.url, { ignoredmediatypes: ['application/octet-stream'], ignore: { actions: ['pull'] } }),
      ],
    },
  });
  t.after(() => reg.close());
  const img = await makeImage({ label: 'filtered' });
  await pushImage(reg.url, 'team/f', 'v1', img);
  await (await fetch(`${reg.url}/v2/team/f/manifests/v1`)).arrayBuffer();
  await pushBlob(reg.url, 'team/f', randomBytes(5));
  assert.equal((await fetch(`${reg.url}/v2/team/f/manifests/v1`, { method: 'DELETE' })).status, 202);
  await receiver.waitFor(2);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(
    receiver.events().map((e) => e['action']),
    ['push', 'delete'],
  );
});

test('delivery resumes after a restart from the saved cursor: nothing delivered twice, nothing lost', async (t) => {
  const receiver = await startEventReceiver();
  t.after(() => receiver.close());
  const config = { notifications: { journal: { node: NODE }, endpoints: [endpoint(receiver.url)] } };
  const first = await startRegistry(config);
  const a = await pushBlob(first.url, 'team/r', randomBytes(10));
  await receiver.waitFor(1);
  receiver.mode = { status: 502 };
  const b = await pushBlob(first.url, 'team/r', randomBytes(10));
  await until(() => receiver.attempts >= 2, 'a failed try of the second event');
  await first.app.close();
  receiver.mode = 'ok';
  const second = await startRegistry(config, first.root);
  t.after(async () => {
    await second.close();
    if (second.storage === 'filesystem') await rm(first.root, { recursive: true, force: true });
  });
  await receiver.waitFor(2);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(
    receiver.events().map((e) => (e['target'] as { digest: string }).digest),
    [a, b],
  );
});

test('a failing endpoint is retried on its backoff, not at every request that journals an event', async (t) => {
  const receiver = await startEventReceiver();
  receiver.mode = { status: 503 };
  t.after(() => receiver.close());
  const reg = await startRegistry({
    notifications: {
      journal: { node: NODE },
      endpoints: [endpoint(receiver.url, { backoff: '5s', maxbackoff: '5s' })],
    },
  });
  t.after(() => reg.close());
  await pushBlob(reg.url, 'team/backoff', randomBytes(32));
  await until(() => receiver.attempts >= 1, 'the first try');
  const start = Date.now();
  for (let i = 0; i < 30; i++) await pushBlob(reg.url, 'team/backoff', randomBytes(32));
  // One try per 5 s of backoff while the pushes ran (and one in flight at either end), whatever their number.
  const allowed = 2 + Math.ceil((Date.now() - start) / 5000);
  assert.ok(
    receiver.attempts <= allowed,
    `${receiver.attempts} tries during 30 pushes in ${Date.now() - start} ms (at most ${allowed})`,
  );
});
