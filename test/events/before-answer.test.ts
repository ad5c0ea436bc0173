import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { needTools, run } from '../helpers/tools.js';
import { startAuthRegistry, basic, USERS } from '../auth/fixture.js';
import type { RegistryEvent } from '../../src/events/types.js';

// Every event a request causes is journaled before that request is answered. Each test reads the
// journal the moment the answer's headers arrive, without waiting: an event written after the answer
// (or beside it) is not there yet.

/** What the node's journal holds this instant (kept segments are in memory: no storage read to wait on). */
function journaledNow(reg: TestRegistry): Promise<RegistryEvent[]> {
  return reg.ctx.events!.journal.read(-1, 10_000);
}

test('a cache refusal is in the journal when the 403 arrives, with its flow rule', async (t) => {
  const up = await startRegistry();
  t.after(() => up.close());
  const img = await makeImage({ label: 'before-answer-cache' });
  await pushImage(up.url, 'someone/tool', '1', img);
  await pushImage(up.url, 'library/busybox', '1', img);
  const cache = await startRegistry({
    upstreams: { 'docker.io': { url: up.url, ttl: '1h', timeout: '2s' } },
    flows: [{ images: ['docker.io/library/*'] }, { images: ['docker.io/**'], deny: true }],
    notifications: { journal: { node: 'answer', pulls: 'all' } },
  });
  t.after(() => cache.close());
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${cache.url}/v2/docker.io/someone/tool/manifests/r${i}`, {
      headers: { accept: img.mediaType },
    });
    const events = await journaledNow(cache);
    assert.equal(res.status, 403);
    await res.arrayBuffer();
    const refused = events.find((e) => e.type === 'cache.refused' && e.target.tag === `r${i}`);
    assert.ok(refused, `refusal ${i} not journaled when its 403 arrived: ${JSON.stringify(events.map((e) => e.type))}`);
    assert.equal(refused.target.repository, 'docker.io/someone/tool');
    assert.equal(refused.data?.['rule'], 'flow rule 2');
  }
  // A fill is journaled before the manifest is served (and before the pull event of the same request).
  const res = await fetch(`${cache.url}/v2/docker.io/library/busybox/manifests/1`, {
    headers: { accept: img.mediaType },
  });
  const events = await journaledNow(cache);
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  const types = events.filter((e) => e.target.repository === 'docker.io/library/busybox').map((e) => e.type);
  assert.deepEqual(types, ['cache.fill', 'pull']);
});

test('a failed login at /v2/ and at the token endpoint is in the journal when the 401 arrives', async (t) => {
  const fx = await startAuthRegistry({ config: { notifications: { journal: { node: 'answer' } } } });
  t.after(() => fx.close());
  const url = fx.reg.url;
  const wrong = basic('alice', 'wrong-password');
  const v2 = await fetch(`${url}/v2/`, { headers: { authorization: wrong } });
  let events = await journaledNow(fx.reg);
  assert.equal(v2.status, 401);
  await v2.arrayBuffer();
  assert.deepEqual(
    events.filter((e) => e.type === 'login.failed').map((e) => e.data?.['user']),
    ['alice'],
  );
  // Docker's login with a refresh token asks POST /token with a password grant: no Authorization header.
  const form = new URLSearchParams({
    grant_type: 'password',
    username: 'bob',
    password: 'wrong',
    service: 'sluice',
    client_id: 'docker',
  });
  const token = await fetch(`${url}/token`, {
    method: 'POST',
    body: form,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  events = await journaledNow(fx.reg);
  assert.equal(token.status, 401);
  await token.arrayBuffer();
  assert.deepEqual(
    events.filter((e) => e.type === 'login.failed').map((e) => e.data?.['user']),
    ['alice', 'bob'],
  );
  for (const e of events) assert.ok(!JSON.stringify(e).includes('wrong'), 'no event carries a password');
  // The right password is no failed login; neither is a first anonymous /v2/ (the challenge every client gets).
  const ok = await fetch(`${url}/v2/`, { headers: { authorization: basic('alice', USERS.alice) } });
  await ok.arrayBuffer();
  const anonymous = await fetch(`${url}/v2/`);
  await anonymous.arrayBuffer();
  assert.equal(anonymous.status, 401);
  assert.equal((await journaledNow(fx.reg)).filter((e) => e.type === 'login.failed').length, 2);
});

test('skopeo login with a wrong password is a failed-login event naming the user', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const fx = await startAuthRegistry({ config: { notifications: { journal: { node: 'answer' } } } });
  t.after(() => fx.close());
  const r = await run('skopeo', ['login', '--tls-verify=false', '-u', 'carol', '-p', 'not-her-password', fx.reg.host], {
    env: { REGISTRY_AUTH_FILE: `${fx.dir}/auth.json` },
    timeoutMs: 60_000,
  });
  assert.notEqual(r.code, 0, 'skopeo login must fail');
  const failed = (await journaledNow(fx.reg)).filter((e) => e.type === 'login.failed');
  assert.ok(failed.length >= 1, "skopeo's refused login is journaled");
  assert.ok(failed.every((e) => e.data?.['user'] === 'carol' && e.data?.['status'] === 401));
});
