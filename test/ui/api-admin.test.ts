import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { startRegistry } from '../helpers/registry.js';
import { basic, startAdminFixture, type AdminFixture } from './admin-fixture.js';

// biome-ignore lint/suspicious/noExplicitAny: the tests walk the API's JSON answers without a type per route
type Json = Record<string, any>;

let fx: AdminFixture;

before(async () => {
  fx = await startAdminFixture();
});

after(async () => {
  await fx?.close();
});

async function api(
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; body: Json }> {
  const r = await fetch(`${fx.reg.url}${path}`, { method, headers });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Json) : {} };
}

/** A UI session of a user: its cookie and CSRF token. */
async function session(user: 'alice' | 'bob' | 'carol'): Promise<{ cookie: string; csrf: string }> {
  const { USERS } = await import('../auth/fixture.js');
  const r = await fetch(`${fx.reg.url}/api/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: user, password: USERS[user] }),
  });
  assert.equal(r.status, 200);
  const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!;
  const body = (await r.json()) as { csrf: string };
  return { cookie, csrf: body.csrf };
}

test('only administrators (ui.admins) get the jobs, runs and audit APIs: 401 anonymous, 403 others', async () => {
  for (const path of ['/api/v1/jobs', '/api/v1/jobs/app/runs', '/api/v1/audit']) {
    const anon = await api(path);
    assert.equal(anon.status, 401, path);
    assert.equal(anon.body.errors[0].code, 'UNAUTHORIZED');
    const bob = await api(path, basic('bob'));
    assert.equal(bob.status, 403, path);
    assert.match(bob.body.errors[0].message, /only administrators \(ui\.admins\)/);
    const alice = await api(path, basic('alice'));
    assert.equal(alice.status, 403, path);
    assert.equal((await api(path, basic('carol'))).status, 200, path);
  }
  assert.equal((await api('/api/v1/jobs/app/run', basic('bob'), 'POST')).status, 403);
  assert.equal((await api('/api/v1/jobs/app/run', {}, 'POST')).status, 401);
  // The navigation offers the pages to carol only.
  const pages = (jobs: boolean, audit: boolean) => ({ explain: true, jobs, audit, lifecycle: true });
  assert.deepEqual((await api('/api/v1/pages', basic('carol'))).body, pages(true, true));
  assert.deepEqual((await api('/api/v1/pages', basic('bob'))).body, pages(false, false));
  assert.deepEqual((await api('/api/v1/pages')).body, pages(false, false));
});

test('GET /api/v1/jobs gives the schedule, next run and last run; runs list what was copied and refused, and why', async () => {
  const jobs = await api('/api/v1/jobs', basic('carol'));
  assert.equal(jobs.body.mayRun, true);
  const job = jobs.body.items[0];
  assert.equal(job.name, 'app');
  assert.deepEqual(job.schedule, { every: '1h' });
  const next = Date.parse(job.nextRun) - Date.now();
  assert.ok(next > 50 * 60_000 && next <= 3600_000, `next run in ${next} ms`);
  assert.deepEqual(job.lastRun.counts, { copied: 1, moved: 0, unchanged: 0, pruned: 0, refused: 1, errors: 0 });
  const runs = await api('/api/v1/jobs/app/runs', basic('carol'));
  assert.equal(runs.status, 200);
  assert.equal(runs.body.total, 1);
  const run = runs.body.items[0];
  assert.deepEqual(run.copied, ['docker.io/library/app:1.0']);
  assert.equal(run.refused.length, 1);
  assert.equal(run.refused[0].image, 'docker.io/library/app:1.1-rc1');
  assert.match(run.refused[0].reason, /no release candidates/);
  assert.equal((await api('/api/v1/jobs/nope/runs', basic('carol'))).status, 404);
  assert.equal((await api('/api/v1/jobs/..%2F..%2Fetc/runs', basic('carol'))).status, 404);
});

test('POST /api/v1/jobs/:name/run starts a run; with a session cookie it needs the CSRF token', async () => {
  const carol = await session('carol');
  const forged = await api('/api/v1/jobs/app/run', { cookie: carol.cookie }, 'POST');
  assert.equal(forged.status, 403);
  assert.match(forged.body.errors[0].message, /CSRF/);
  const other = await api(
    '/api/v1/jobs/app/run',
    { cookie: carol.cookie, 'x-csrf-token': carol.csrf, origin: 'http://evil.test' },
    'POST',
  );
  assert.equal(other.status, 403);
  assert.equal((await api('/api/v1/jobs/app/runs', basic('carol'))).body.total, 1, 'no run was started');
  const started = await api('/api/v1/jobs/app/run', { cookie: carol.cookie, 'x-csrf-token': carol.csrf }, 'POST');
  assert.equal(started.status, 202);
  assert.equal(started.body.job, 'app');
  for (let i = 0; ; i++) {
    const runs = await api('/api/v1/jobs/app/runs', basic('carol'));
    if (runs.body.total === 2 && !runs.body.running) {
      // Newest first: the second run found 1.0 unchanged and refused the candidate again.
      assert.equal(runs.body.items[0].counts.unchanged, 1);
      assert.equal(runs.body.items[0].counts.refused, 1);
      break;
    }
    assert.ok(i < 300, 'the run did not finish');
    await new Promise((r) => setTimeout(r, 100));
  }
  // The run page can be paged.
  const p2 = await api('/api/v1/jobs/app/runs?n=1&page=2', basic('carol'));
  assert.equal(p2.body.items.length, 1);
  assert.equal(p2.body.items[0].counts.copied, 1);
});

test('GET /api/v1/audit filters on the server (user, action, repository, decision, time) and pages', async () => {
  // An allowed write, which the audit log records: alice uploads a blob to her repository in one request.
  const blob = Buffer.from('audited blob');
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const upload = await fetch(`${fx.reg.url}/v2/team-a/app/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    headers: { ...basic('alice'), 'content-type': 'application/octet-stream' },
    body: blob,
  });
  assert.equal(upload.status, 201);
  const all = await api('/api/v1/audit', basic('carol'));
  assert.equal(all.status, 200);
  assert.equal(all.body.kept, true);
  const denied = await api('/api/v1/audit?user=bob&decision=denied&action=pull&repository=TEAM-A', basic('carol'));
  assert.ok(denied.body.total >= 1);
  for (const r of denied.body.items) {
    assert.equal(r.principal, 'bob');
    assert.equal(r.decision, 'denied');
    assert.equal(r.repository, 'team-a/app');
  }
  assert.match(denied.body.items[0].reason, /pull/);
  const allowed = await api('/api/v1/audit?decision=allowed', basic('carol'));
  assert.ok(allowed.body.total >= 1);
  assert.ok(allowed.body.items.every((r: Json) => r.decision === 'allowed'));
  assert.equal(allowed.body.items[0].principal, 'alice');
  const deniedAll = await api('/api/v1/audit?decision=denied', basic('carol'));
  assert.equal(allowed.body.total + deniedAll.body.total, all.body.total);
  // The refusals of the admin APIs above are audited too, with the rule that decided them.
  const refusedAdmin = await api('/api/v1/audit?user=bob&action=jobs', basic('carol'));
  assert.ok(refusedAdmin.body.total >= 1);
  assert.equal(refusedAdmin.body.items[0].rule, 'ui.admins');
  // Time range: nothing before 2000, everything since then.
  assert.equal((await api('/api/v1/audit?until=2000-01-01', basic('carol'))).body.total, 0);
  assert.equal((await api('/api/v1/audit?since=2000-01-01', basic('carol'))).body.total, all.body.total);
  // Newest first, paged; a line that is not a record (or half a record) is skipped, not an error.
  await appendFile(fx.auditPath, 'not json\n{"time":"x"\n');
  const one = await api('/api/v1/audit?n=1&page=2', basic('carol'));
  assert.equal(one.body.items.length, 1);
  assert.equal(one.body.total, all.body.total, 'the lines that are not records are not counted');
  assert.deepEqual(one.body.items[0], all.body.items[1]);
  assert.ok(Date.parse(all.body.items[0].time) >= Date.parse(all.body.items.at(-1).time));
  for (const bad of ['decision=maybe', 'since=yesterday', 'action=%3Cscript%3E', 'user=a&user=b', 'n=x'])
    assert.equal((await api(`/api/v1/audit?${bad}`, basic('carol'))).status, 400, bad);
});

test('GET /api/v1/policy/explain answers as sluice policy explain; only administrators may ask about others', async () => {
  const mine = await api('/api/v1/policy/explain?reference=team-a/app:v1&action=pull,push', basic('alice'));
  assert.equal(mine.status, 200);
  assert.equal(mine.body.principal, 'alice');
  assert.deepEqual(mine.body.lines.slice(0, 2), [
    'pull: ALLOWED',
    '  rule:    rule 1 "team-a": repos [team-a/**] who [alice, group:ops] allow [pull, push, delete]',
  ]);
  const other = await api('/api/v1/policy/explain?reference=team-a/app:v1&who=user&name=bob', basic('alice'));
  assert.equal(other.status, 403);
  assert.match(other.body.errors[0].message, /only administrators/);
  const anonOther = await api('/api/v1/policy/explain?reference=team-a/app&who=user&name=alice');
  assert.equal(anonOther.status, 403);
  const anonSelf = await api('/api/v1/policy/explain?reference=team-a/app&action=pull');
  assert.equal(anonSelf.body.principal, 'anonymous');
  assert.equal(anonSelf.body.allowed, false);
  const byAdmin = await api(
    '/api/v1/policy/explain?reference=team-a/app:v1&who=user&name=bob&action=pull',
    basic('carol'),
  );
  assert.equal(byAdmin.status, 200);
  assert.equal(byAdmin.body.principal, 'bob');
  assert.equal(byAdmin.body.result[0].allowed, false);
  const robot = await api(
    '/api/v1/policy/explain?reference=public/tool&who=robot&name=builder&action=pull',
    basic('carol'),
  );
  assert.equal(robot.body.principal, 'robot:builder');
  assert.equal(robot.body.allowed, true);
  const fetchRc = await api(
    '/api/v1/policy/explain?reference=docker.io/library/app:1.1-rc1&action=fetch',
    basic('bob'),
  );
  assert.equal(fetchRc.body.kind, 'fetch');
  assert.equal(fetchRc.body.allowed, false);
  assert.match(fetchRc.body.lines.join('\n'), /no release candidates/);
  const trust = await api('/api/v1/policy/explain?reference=public/tool&action=trust');
  assert.equal(trust.body.kind, 'trust');
  for (const bad of [
    'reference=UPPER',
    'reference=a&action=fly',
    'reference=a&who=god',
    'reference=a&who=user',
    'action=pull',
  ])
    assert.equal((await api(`/api/v1/policy/explain?${bad}`, basic('carol'))).status, 400, bad);
});

test('GET /api/v1/lifecycle lists usage and the tags retention deletes next, only of what the caller may pull', async () => {
  const anon = await api('/api/v1/lifecycle');
  assert.equal(anon.status, 200);
  assert.deepEqual(anon.body.items.map((r: Json) => r.repository).sort(), ['docker.io/library/app', 'public/tool']);
  assert.equal(anon.body.total, 2, 'a hidden repository is not counted');
  assert.equal(anon.body.items[0].exclusive, undefined, 'sharing is told to administrators only');
  const alice = await api('/api/v1/lifecycle?q=team', basic('alice'));
  assert.equal(alice.body.total, 1);
  const team = alice.body.items[0];
  assert.equal(team.repository, 'team-a/app');
  assert.ok(team.bytes > 0);
  assert.equal(team.kept, 1);
  assert.deepEqual(
    team.deleting.map((d: Json) => d.tag),
    ['v0'],
  );
  assert.match(team.deleting[0].reason, /latest of team-a/);
  assert.deepEqual(
    team.keptBy.map((d: Json) => d.tag),
    ['v1'],
  );
  const carol = await api('/api/v1/lifecycle', basic('carol'));
  assert.equal(carol.body.total, 3);
  assert.equal(typeof carol.body.items[0].exclusive, 'number');
  // The mirror's repository is not governed by the rule: nothing of it is deleted.
  const mirrored = carol.body.items.find((r: Json) => r.repository === 'docker.io/library/app');
  assert.equal(mirrored.governed, false);
  assert.equal((await api('/api/v1/lifecycle?n=1&page=2', basic('carol'))).body.items.length, 1);
});

test('ui.admins naming a group that access.groups lacks stops the start, as in a rule', async () => {
  await assert.rejects(
    startRegistry({ ui: { admins: ['group:nope'] } }),
    /ui\.admins: group nope is not defined under access\.groups/,
  );
});

test('a read-only node lists the mirror jobs from storage but does not start them (409)', async (t) => {
  const reg = await startRegistry({
    storage: { maintenance: { readonly: { enabled: true } } },
    upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } },
    flows: [{ images: ['docker.io/library/*'] }],
    mirrors: [{ name: 'app', images: ['docker.io/library/app'], every: '1h' }],
    // No logins here: every caller is anonymous, so only `*` or `anonymous` can name an administrator.
    ui: { admins: ['anonymous'] },
  });
  t.after(() => reg.close());
  const jobs = await fetch(`${reg.url}/api/v1/jobs`);
  const body = (await jobs.json()) as Json;
  assert.equal(jobs.status, 200);
  assert.equal(body.mayRun, false);
  assert.equal(body.why, 'this registry is read-only');
  assert.equal(body.items[0].name, 'app');
  assert.equal(body.items[0].nextRun, undefined);
  const run = await fetch(`${reg.url}/api/v1/jobs/app/run`, { method: 'POST' });
  assert.equal(run.status, 409);
  assert.match(((await run.json()) as Json).errors[0].message, /read-only/);
});
