import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeImage, makeIndex, makeMultiArch, pushAsReferrer, pushImage, type TestImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startAuthRegistry, USERS } from '../auth/fixture.js';

// biome-ignore lint/suspicious/noExplicitAny: the tests walk the API's JSON answers without a type per route
type Json = Record<string, any>;

async function api(
  url: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Json }> {
  const r = await fetch(`${url}${path}`, { headers });
  return { status: r.status, body: (await r.json()) as Json };
}

function basic(user: keyof typeof USERS): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${USERS[user]}`).toString('base64')}` };
}

/** The repository list once every row has its sizes: a row whose tags are still being read says `pending` and comes back. */
async function settledList(url: string, path: string): Promise<{ status: number; body: Json }> {
  for (let i = 0; ; i++) {
    const r = await api(url, path);
    if (r.status !== 200 || !r.body.items.some((x: Json) => x.pending) || i > 100) return r;
    await new Promise((res) => setTimeout(res, 100));
  }
}

const imageSize = (i: TestImage) =>
  i.manifest.length + i.config.bytes.length + i.layers.reduce((n, l) => n + l.bytes.length, 0);

test('GET /api/v1/repositories lists, searches and pages on the server', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const img = await makeImage({ label: 'one' });
  for (const name of ['team/app', 'team/web', 'other/tool']) await pushImage(reg.url, name, 'v1', img);
  const all = await settledList(reg.url, '/api/v1/repositories');
  assert.equal(all.status, 200);
  assert.deepEqual(
    all.body.items.map((r: Json) => r.name),
    ['other/tool', 'team/app', 'team/web'],
  );
  assert.equal(all.body.total, 3);
  const row = all.body.items[0];
  assert.equal(row.kind, 'local');
  assert.equal(row.tags, 1);
  assert.equal(row.size, imageSize(img));
  assert.match(row.lastPush, /^\d{4}-\d\d-\d\dT/);
  const found = await api(reg.url, '/api/v1/repositories?q=TEAM&n=1&page=2');
  assert.deepEqual(
    found.body.items.map((r: Json) => r.name),
    ['team/web'],
  );
  assert.equal(found.body.total, 2);
  const desc = await api(reg.url, '/api/v1/repositories?order=desc&n=1');
  assert.equal(desc.body.items[0].name, 'team/web');
  const bad = await api(reg.url, '/api/v1/repositories?sort=size');
  assert.equal(bad.status, 400);
});

test('GET /api/v1/tags gives one row per tag with each platform and its own size, sorted and filtered', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const multi = await makeMultiArch('m');
  const small = await makeImage({ label: 'small' });
  await pushImage(reg.url, 'app', 'multi', multi);
  await pushImage(reg.url, 'app', 'small', small);
  await pushImage(reg.url, 'app', 'small-too', small);
  const r = await api(reg.url, '/api/v1/tags?repository=app&sort=size&order=desc');
  assert.equal(r.status, 200);
  assert.deepEqual(
    r.body.items.map((x: Json) => x.tag),
    ['multi', 'small', 'small-too'],
  );
  const m = r.body.items[0];
  assert.equal(m.digest, multi.digest);
  assert.equal(m.kind, 'index');
  assert.deepEqual(
    m.platforms.map((p: Json) => [p.platform, p.size]),
    multi.images.map((i) => [
      `${i.platform.os}/${i.platform.architecture}${i.platform.variant ? `/${i.platform.variant}` : ''}`,
      imageSize(i),
    ]),
  );
  assert.equal(m.size, multi.manifest.length + multi.images.reduce((n, i) => n + imageSize(i), 0));
  // Two tags of one manifest count once in the repository's size.
  assert.equal(r.body.size, m.size + imageSize(small));
  assert.deepEqual(r.body.platforms, ['linux/amd64', 'linux/arm64/v8', 'linux/s390x']);
  const s390 = await api(reg.url, '/api/v1/tags?repository=app&platform=linux/s390x');
  assert.deepEqual(
    s390.body.items.map((x: Json) => x.tag),
    ['multi'],
  );
  const q = await api(reg.url, '/api/v1/tags?repository=app&q=too');
  assert.deepEqual(
    q.body.items.map((x: Json) => x.tag),
    ['small-too'],
  );
  const byName = await api(reg.url, '/api/v1/tags?repository=app&n=2&page=2');
  assert.deepEqual(
    byName.body.items.map((x: Json) => x.tag),
    ['small-too'],
  );
  assert.equal(byName.body.total, 3);
  // A push through this process shows at once, not when the cached table ages out.
  await pushImage(reg.url, 'app', 'later', small);
  const after = await api(reg.url, '/api/v1/tags?repository=app');
  assert.equal(after.body.total, 4);
});

test('GET /api/v1/image shows config, layers, referrers, index children and pull commands', async (t) => {
  const reg = await startRegistry({
    http: { host: 'https://registry.example.com' },
    validation: { manifests: { indexes: { platforms: 'none' } } },
  });
  t.after(() => reg.close());
  const img = await makeImage({ label: '<img src=x onerror=alert(1)>' });
  await pushImage(reg.url, 'team/app', 'v1', img);
  const sbom = await makeImage({ label: 'sbom' });
  const ref = await pushAsReferrer(reg.url, 'team/app', sbom, img);
  const r = await api(reg.url, '/api/v1/image?repository=team/app&reference=v1');
  assert.equal(r.status, 200);
  assert.equal(r.body.digest, img.digest);
  assert.equal(r.body.manifest, img.manifest.toString());
  assert.equal(r.body.config.labels['test.label'], '<img src=x onerror=alert(1)>');
  assert.deepEqual(r.body.config.cmd, ['/bin/sh']);
  assert.equal(r.body.config.history[0].createdBy, 'sluice test');
  assert.deepEqual(
    r.body.layers.map((l: Json) => l.size),
    img.layers.map((l) => l.bytes.length),
  );
  assert.deepEqual(
    r.body.referrers.map((x: Json) => x.digest),
    [ref],
  );
  assert.equal(r.body.pull.tag.docker, 'docker pull registry.example.com/team/app:v1');
  assert.equal(r.body.pull.digest.crane, `crane pull registry.example.com/team/app@${img.digest} image.tar`);
  assert.equal(r.body.trust.state, 'none');
  const multi = await makeMultiArch('idx');
  // A partial index: the s390x child is not pushed, as a one-platform mirror leaves it.
  await pushImage(reg.url, 'team/app', multi.images[0]!.digest, multi.images[0]!);
  await pushImage(reg.url, 'team/app', multi.images[1]!.digest, multi.images[1]!);
  const res = await fetch(`${reg.url}/v2/team/app/manifests/multi`, {
    method: 'PUT',
    body: multi.manifest,
    headers: { 'content-type': multi.mediaType },
  });
  assert.equal(res.status, 201, await res.text());
  const idx = await api(reg.url, `/api/v1/image?repository=team/app&reference=${multi.digest}`);
  assert.deepEqual(
    idx.body.children.map((c: Json) => [c.platform, c.present]),
    [
      ['linux/amd64', true],
      ['linux/arm64/v8', true],
      ['linux/s390x', false],
    ],
  );
  assert.equal(idx.body.pull.tag, undefined);
  const missing = await api(reg.url, '/api/v1/image?repository=team/app&reference=nope');
  assert.equal(missing.status, 404);
  assert.equal(missing.body.errors[0].code, 'MANIFEST_UNKNOWN');
});

test('the API refuses names outside the grammar before they reach storage', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  for (const name of ['../../etc', 'a//b', 'UPPER', '', '%2e%2e/x']) {
    const r = await api(reg.url, `/api/v1/tags?repository=${encodeURIComponent(name)}`);
    assert.equal(r.status, 400, name);
    assert.equal(r.body.errors[0].code, 'NAME_INVALID');
  }
  const twice = await api(reg.url, '/api/v1/tags?repository=a&repository=b');
  assert.equal(twice.status, 400);
  const ref = await api(reg.url, '/api/v1/image?repository=a&reference=..%2F..%2Fx');
  assert.equal(ref.status, 400);
});

const ACCESS = {
  rules: [
    { repos: ['public/**'], who: ['*'], allow: ['pull'] },
    { repos: ['team-a/**'], who: ['alice'], allow: ['pull', 'push', 'delete'] },
  ],
};

/** Pushes through an open registry on `root`, then serves that root with access control. */
async function seeded(t: { after(fn: () => Promise<void>): void }): Promise<TestRegistry> {
  const open = await startRegistry();
  const img = await makeImage({ label: 'seed' });
  for (const name of ['public/app', 'team-a/app', 'secret/app']) await pushImage(open.url, name, 'v1', img);
  await pushImage(open.url, 'secret/app', 'v2', makeIndex([img]));
  await open.app.close();
  const f = await startAuthRegistry({ access: ACCESS, root: open.root });
  t.after(() => f.close());
  return f.reg;
}

test('anonymous callers see only what anonymous may pull; hidden names are not counted or hinted at', async (t) => {
  const reg = await seeded(t);
  const list = await api(reg.url, '/api/v1/repositories');
  assert.equal(list.status, 200);
  assert.deepEqual(
    list.body.items.map((r: Json) => r.name),
    ['public/app'],
  );
  assert.equal(list.body.total, 1);
  const search = await api(reg.url, '/api/v1/repositories?q=secret');
  assert.deepEqual([search.body.total, search.body.items], [0, []]);
  assert.equal((await api(reg.url, '/api/v1/tags?repository=public/app')).status, 200);
  // A name that exists and one that does not get the same answer.
  const hidden = await api(reg.url, '/api/v1/tags?repository=secret/app');
  const absent = await api(reg.url, '/api/v1/tags?repository=secret/absent');
  assert.equal(hidden.status, 401);
  assert.deepEqual([hidden.status, hidden.body.errors[0].code], [absent.status, absent.body.errors[0].code]);
  assert.equal(
    hidden.body.errors[0].message.replace('secret/app', 'X'),
    absent.body.errors[0].message.replace('secret/absent', 'X'),
  );
  const image = await api(reg.url, '/api/v1/image?repository=secret/app&reference=v1');
  assert.equal(image.status, 401);
});

test('a user allowed one repository glob sees that and the public ones, nothing else', async (t) => {
  const reg = await seeded(t);
  const list = await api(reg.url, '/api/v1/repositories', basic('alice'));
  assert.deepEqual(
    list.body.items.map((r: Json) => r.name),
    ['public/app', 'team-a/app'],
  );
  const bob = await api(reg.url, '/api/v1/repositories', basic('bob'));
  assert.deepEqual(
    bob.body.items.map((r: Json) => r.name),
    ['public/app'],
  );
  const tags = await api(reg.url, '/api/v1/tags?repository=team-a/app', basic('alice'));
  assert.deepEqual(
    tags.body.items.map((r: Json) => r.tag),
    ['v1'],
  );
  const denied = await api(reg.url, '/api/v1/tags?repository=secret/app', basic('alice'));
  const absent = await api(reg.url, '/api/v1/tags?repository=secret/absent', basic('alice'));
  assert.equal(denied.status, 403);
  assert.deepEqual([denied.status, denied.body.errors[0].code], [absent.status, absent.body.errors[0].code]);
  const wrong = await api(reg.url, '/api/v1/repositories', {
    authorization: `Basic ${Buffer.from('alice:wrong').toString('base64')}`,
  });
  assert.equal(wrong.status, 401);
});

test('ui.enabled: false serves no API', async (t) => {
  const reg = await startRegistry({ ui: { enabled: false } });
  t.after(() => reg.close());
  assert.equal((await fetch(`${reg.url}/api/v1/repositories`)).status, 404);
});

test('POST /api/v1/session sets an HttpOnly SameSite=Strict cookie that works only as a UI session', async (t) => {
  const reg = await seeded(t);
  const login = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${reg.url}/api/v1/session`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json', ...headers },
    });
  assert.equal((await login({ username: 'alice', password: 'wrong' })).status, 401);
  // A form of another site cannot send JSON, and a request from another origin is refused.
  const form = await fetch(`${reg.url}/api/v1/session`, {
    method: 'POST',
    body: 'username=alice',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  assert.equal(form.status, 415);
  assert.equal(
    (await login({ username: 'alice', password: USERS.alice }, { origin: 'https://evil.example' })).status,
    403,
  );
  const ok = await login({ username: 'alice', password: USERS.alice });
  assert.equal(ok.status, 200);
  const cookie = ok.headers.get('set-cookie') ?? '';
  assert.match(cookie, /^sluice_session=[\w.-]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
  const session = cookie.split(';')[0]!;
  const body = (await ok.json()) as Json;
  assert.equal(body.user, 'alice');
  const list = await api(reg.url, '/api/v1/repositories', { cookie: session });
  assert.deepEqual(
    list.body.items.map((r: Json) => r.name),
    ['public/app', 'team-a/app'],
  );
  assert.equal((await api(reg.url, '/api/v1/session', { cookie: session })).body.csrf, body.csrf);
  // The session token is no bearer token for the registry API, and the cookie means nothing there.
  const token = session.slice(session.indexOf('=') + 1);
  assert.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: `Bearer ${token}` } })).status, 401);
  assert.equal(
    (await fetch(`${reg.url}/v2/team-a/app/tags/list`, { headers: { authorization: `Bearer ${token}` } })).status,
    401,
  );
  assert.equal((await fetch(`${reg.url}/v2/team-a/app/tags/list`, { headers: { cookie: session } })).status, 401);
  // Deleting needs the CSRF token; with it, alice may delete in team-a.
  const del = (headers: Record<string, string>) =>
    fetch(`${reg.url}/api/v1/tags?repository=team-a/app&tag=v1`, {
      method: 'DELETE',
      headers: { cookie: session, ...headers },
    });
  assert.equal((await del({})).status, 403);
  assert.equal((await del({ 'x-csrf-token': 'x'.repeat(43) })).status, 403);
  assert.equal((await del({ 'x-csrf-token': body.csrf })).status, 202);
  const tampered = session.slice(0, -2) + (session.endsWith('A') ? 'BB' : 'AA');
  const anon = await api(reg.url, '/api/v1/repositories', { cookie: tampered });
  assert.deepEqual(
    anon.body.items.map((r: Json) => r.name),
    ['public/app'],
  );
});

test('GET /api/v1/explain gives the caller its own decisions, only where it may pull', async (t) => {
  const reg = await seeded(t);
  const mine = await api(reg.url, '/api/v1/explain?repository=team-a/app&reference=v1', basic('alice'));
  assert.equal(mine.status, 200);
  assert.equal(mine.body.principal, 'alice');
  assert.deepEqual(
    mine.body.actions.map((a: Json) => [a.action, a.allowed, a.by]),
    [
      ['pull', true, 'rule 2'],
      ['push', true, 'rule 2'],
      ['overwrite', false, 'default'],
      ['delete', true, 'rule 2'],
    ],
  );
  const anon = await api(reg.url, '/api/v1/explain?repository=public/app');
  assert.deepEqual(
    anon.body.actions.map((a: Json) => [a.action, a.allowed]),
    [
      ['pull', true],
      ['push', false],
      ['overwrite', false],
      ['delete', false],
    ],
  );
  // Not for what the caller may not pull: the registry's refusal, the same as for a name that does not exist.
  const hidden = await api(reg.url, '/api/v1/explain?repository=secret/app', basic('alice'));
  const absent = await api(reg.url, '/api/v1/explain?repository=secret/absent', basic('alice'));
  assert.deepEqual([hidden.status, absent.status], [403, 403]);
});
