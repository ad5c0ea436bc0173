import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { startEventReceiver } from '../helpers/event-receiver.js';
import { writeHtpasswd } from '../auth/fixture.js';

type Json = Record<string, unknown>;

function cloudEndpoint(url: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'chat', url, format: 'cloudevents', timeout: '2s', threshold: 0, backoff: '20ms', ...extra };
}

test("CloudEvents endpoints get Sluice's types, filtered by repository glob, type and media type", async (t) => {
  const receiver = await startEventReceiver();
  t.after(() => receiver.close());
  const img = await makeImage({ label: 'ce-1' });
  const reg = await startRegistry({
    notifications: {
      journal: { node: 'ce' },
      endpoints: [
        cloudEndpoint(receiver.url, {
          repositories: ['team/**'],
          types: ['push', 'tag.moved'],
          mediatypes: [img.mediaType],
        }),
      ],
    },
  });
  t.after(() => reg.close());
  const other = await makeImage({ label: 'ce-2' });
  await pushImage(reg.url, 'elsewhere/app', 'v1', img);
  await pushImage(reg.url, 'team/app', 'v1', img);
  await pushImage(reg.url, 'team/app', 'v1', other);
  await (await fetch(`${reg.url}/v2/team/app/manifests/v1`)).arrayBuffer();
  await receiver.waitFor(3);
  await new Promise((r) => setTimeout(r, 300));
  const events = receiver.events();
  assert.deepEqual(
    events.map((e) => [e['type'], e['subject']]),
    [
      ['io.sluice.push', `team/app:v1@${img.digest}`],
      ['io.sluice.push', `team/app:v1@${other.digest}`],
      ['io.sluice.tag.moved', `team/app:v1@${other.digest}`],
    ],
  );
  const moved = events[2]!;
  assert.equal(moved['specversion'], '1.0');
  assert.equal(typeof moved['id'], 'string');
  assert.match(String(moved['source']), /^sluice:\/\//);
  assert.equal((moved['data'] as Json)['previous'], img.digest);
  for (const d of receiver.deliveries) assert.equal(d.headers['content-type'], 'application/cloudevents+json');
});

test('cache fills and refusals are events, with the flow rule that decided', async (t) => {
  const receiver = await startEventReceiver();
  t.after(() => receiver.close());
  const up = await startRegistry();
  t.after(() => up.close());
  const img = await makeImage({ label: 'ce-cache' });
  await pushImage(up.url, 'library/busybox', '1', img);
  await pushImage(up.url, 'someone/tool', '1', img);
  const cache = await startRegistry({
    upstreams: { 'docker.io': { url: up.url, ttl: '1h', timeout: '2s' } },
    flows: [{ images: ['docker.io/library/*'] }, { images: ['docker.io/**'], deny: true }],
    notifications: {
      journal: { node: 'ce' },
      endpoints: [cloudEndpoint(receiver.url, { types: ['cache.fill', 'cache.refused'] })],
    },
  });
  t.after(() => cache.close());
  assert.equal(
    (await fetch(`${cache.url}/v2/docker.io/library/busybox/manifests/1`, { headers: { accept: img.mediaType } }))
      .status,
    200,
  );
  assert.equal(
    (await fetch(`${cache.url}/v2/docker.io/someone/tool/manifests/1`, { headers: { accept: img.mediaType } })).status,
    403,
  );
  await receiver.waitFor(2);
  const byType = Object.fromEntries(receiver.events().map((e) => [e['type'], e]));
  const fill = byType['io.sluice.cache.fill']!;
  assert.equal(fill['subject'], `docker.io/library/busybox:1@${img.digest}`);
  const refused = byType['io.sluice.cache.refused']!;
  assert.equal(refused['subject'], 'docker.io/someone/tool:1');
  assert.equal((refused['data'] as Json)['rule'], 'flow rule 2');
  assert.match(String((refused['data'] as Json)['reason']), /someone\/tool/);
});

test('a failed login is an event naming the user, never the password', async (t) => {
  const receiver = await startEventReceiver();
  t.after(() => receiver.close());
  const dir = await mkdtemp(join(tmpdir(), 'sluice-events-auth-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeHtpasswd(join(dir, 'htpasswd'), { alice: 'right-password' });
  const reg = await startRegistry({
    auth: { htpasswd: { realm: 'test', path: join(dir, 'htpasswd') } },
    notifications: { journal: { node: 'ce' }, endpoints: [cloudEndpoint(receiver.url, { types: ['login.failed'] })] },
  });
  t.after(() => reg.close());
  const basic = Buffer.from('alice:wrong-password').toString('base64');
  assert.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: `Basic ${basic}` } })).status, 401);
  await receiver.waitFor(1);
  const e = receiver.events()[0]!;
  assert.equal(e['type'], 'io.sluice.login.failed');
  assert.equal((e['data'] as Json)['user'], 'alice');
  assert.ok(!receiver.deliveries[0]!.body.includes('wrong-password'));
});

test('a mirror run is an event with what it copied', async (t) => {
  const receiver = await startEventReceiver();
  t.after(() => receiver.close());
  const up = await startRegistry();
  t.after(() => up.close());
  const img = await makeImage({ label: 'ce-mirror' });
  await pushImage(up.url, 'library/app', '1', img);
  const reg = await startRegistry({
    upstreams: { 'docker.io': { url: up.url } },
    flows: [{ images: ['docker.io/library/*'] }],
    mirrors: [{ name: 'follow', images: ['docker.io/library/app'], tags: { include: ['1'] }, every: '1h' }],
    notifications: { journal: { node: 'ce' }, endpoints: [cloudEndpoint(receiver.url, { types: ['mirror.run'] })] },
  });
  t.after(() => reg.close());
  await receiver.waitFor(1);
  const e = receiver.events()[0]!;
  assert.equal(e['type'], 'io.sluice.mirror.run');
  const data = e['data'] as Json;
  assert.equal(data['job'], 'follow');
  assert.equal(data['result'], 'ok');
  assert.equal((data['counts'] as Json)['copied'], 1);
});

test('a collection pass is an event with what it deleted, bytes freed, and the retention rule that condemned a tag', async (t) => {
  const receiver = await startEventReceiver();
  t.after(() => receiver.close());
  const reg = await startRegistry({
    storage: { gc: { enabled: true, interval: '1s', grace: '0s', collector: true } },
    retention: [{ name: 'newest', images: ['team/**'], latest: 1 }],
    notifications: { journal: { node: 'ce' }, endpoints: [cloudEndpoint(receiver.url, { types: ['gc.pass'] })] },
  });
  t.after(() => reg.close());
  for (const tag of ['old', 'new']) {
    await pushImage(reg.url, 'team/app', tag, await makeImage({ label: `ce-gc ${tag}` }));
    // Push time is the tag link's modification time: whole seconds on S3.
    if (reg.storage === 's3') await new Promise((r) => setTimeout(r, 1100));
  }
  // The tag is recorded by one pass and deleted by a later one, with a settle each: generous for a loaded machine.
  const deadline = Date.now() + 90_000;
  const deletedTag = (): Json | undefined => {
    for (const e of receiver.events()) {
      const data = e['data'] as Json;
      const tag = (data['deleted'] as Json[]).find((d) => d['kind'] === 'tag');
      if (tag) return { ...data, tag };
    }
    return undefined;
  };
  while (!deletedTag() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  const pass = deletedTag();
  assert.ok(pass, `no gc.pass event deleted a tag: ${JSON.stringify(receiver.events().map((e) => e['data']))}`);
  for (const e of receiver.events()) assert.equal(e['type'], 'io.sluice.gc.pass');
  const tag = pass['tag'] as Json;
  assert.equal(tag['repository'], 'team/app');
  assert.equal(tag['tag'], 'old');
  assert.equal(tag['cause'], 'retention');
  assert.match(String(tag['reason']), /newest/);
  assert.equal(pass['dryrun'], false);
  assert.ok((pass['deletedObjects'] as number) >= 1);
  assert.equal((pass['counts'] as Json)['tag'], 1);
});

test('a pull refused by trust is an event naming the image and the requirement it did not meet', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-ce-trust-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  await writeFile(join(dir, 'hive.pub'), publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const receiver = await startEventReceiver();
  t.after(() => receiver.close());
  const reg = await startRegistry({
    http: { host: 'http://registry.test' },
    trust: { keys: { hive: join(dir, 'hive.pub') }, require: [{ name: 'prod', images: ['prod/**'], keys: ['hive'] }] },
    notifications: { journal: { node: 'ce' }, endpoints: [cloudEndpoint(receiver.url, { types: ['trust.refused'] })] },
  });
  t.after(() => reg.close());
  const img = await makeImage({ label: 'ce-trust' });
  await pushImage(reg.url, 'prod/app', '1', img);
  const res = await fetch(`${reg.url}/v2/prod/app/manifests/1`);
  await res.arrayBuffer();
  assert.equal(res.status, 403);
  await receiver.waitFor(1);
  const e = receiver.events()[0]!;
  assert.equal(e['type'], 'io.sluice.trust.refused');
  const data = e['data'] as Json;
  const target = data['target'] as Json;
  assert.equal(target['repository'], 'prod/app');
  assert.equal(target['tag'], '1');
  assert.equal(target['digest'], img.digest);
  assert.match(String(data['reason']), /hive|prod|signature/i);
});
