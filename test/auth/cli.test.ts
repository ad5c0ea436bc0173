import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { scratch } from '../helpers/clients.js';
import { startRegistry } from '../helpers/registry.js';
import { sluice } from '../helpers/sluice-cli.js';
import { needTools, runOk } from '../helpers/tools.js';
import { basic, EXAMPLE_ACCESS } from './fixture.js';

test('sluice robot create prints a token once, stores only its hash, and the token logs in', async () => {
  const s = await scratch();
  try {
    const robots = join(s.dir, 'robots.json');
    const cfg = join(s.dir, 'sluice.yml');
    await writeFile(cfg, stringify({ auth: { robots: { path: robots } }, access: EXAMPLE_ACCESS }));
    const r = await sluice(['robot', 'create', 'builder', '-c', cfg, '--expires', '30d']);
    assert.equal(r.code, 0, r.stderr);
    const token = r.stdout.trim();
    assert.match(token, /^sluice_[A-Za-z0-9_-]{43}$/);
    const stored = await readFile(robots, 'utf8');
    assert.ok(!stored.includes(token) && !stored.includes(token.slice(7)), 'the token itself is not stored');
    assert.equal((await sluice(['robot', 'create', 'builder', '-c', cfg])).code, 1);
    const list = await sluice(['robot', 'list', '-c', cfg]);
    assert.match(list.stdout, /^builder\tcreated .*\texpires /);
    const reg = await startRegistry({ auth: { robots: { path: robots } }, access: EXAMPLE_ACCESS });
    try {
      const ok = await fetch(`${reg.url}/v2/team-a/app/tags/list`, { headers: { authorization: basic('robot$builder', token) } });
      assert.equal(ok.status, 404, 'authorized; the repository just does not exist');
      assert.equal((await fetch(`${reg.url}/v2/alice/app/tags/list`, { headers: { authorization: basic('robot$builder', token) } })).status, 403);
      assert.equal((await sluice(['robot', 'delete', 'builder', '-c', cfg])).code, 0);
      assert.equal((await fetch(`${reg.url}/v2/team-a/app/tags/list`, { headers: { authorization: basic('robot$builder', token) } })).status, 401);
    } finally {
      await reg.close();
    }
  } finally {
    await s.cleanup();
  }
});

test('sluice policy explain names the rule and pattern; policy check finds unreachable rules', async () => {
  const s = await scratch();
  try {
    const cfg = join(s.dir, 'sluice.yml');
    await writeFile(cfg, stringify({ access: EXAMPLE_ACCESS }));
    const push = await sluice(['policy', 'explain', '-c', cfg, '--user', 'alice', '--action', 'push', 'team-a/app:1']);
    assert.equal(push.code, 0, push.stderr);
    assert.match(push.stdout, /^push: ALLOWED\n  rule: +rule 2: repos \[team-a\/\*\*\] who \[group:devs, robot:builder\]/);
    assert.match(push.stdout, /pattern: team-a\/\*\*/);
    const anon = await sluice(['policy', 'explain', '-c', cfg, '--anonymous', '--action', 'pull,push', 'docker.io/library/nginx:1']);
    assert.match(anon.stdout, /pull: ALLOWED[\s\S]*pattern: @official: docker.io\/library\/\*[\s\S]*push: DENIED[\s\S]*rule 5/);
    const grp = await sluice(['policy', 'explain', '-c', cfg, '--user', 'dave', '--group', 'devs', '--action', 'push', 'team-a/x']);
    assert.match(grp.stdout, /push: ALLOWED/);
    const robot = await sluice(['policy', 'explain', '-c', cfg, '--robot', 'builder', '--action', 'delete', '--json', 'team-a/x']);
    assert.deepEqual(JSON.parse(robot.stdout)[0].allowed, false);
    assert.equal((await sluice(['policy', 'explain', '-c', cfg, '--user', 'a', '--action', 'fly', 'x'])).code, 1);

    assert.equal((await sluice(['policy', 'check', cfg])).code, 0);
    const bad = join(s.dir, 'bad.yml');
    await writeFile(
      bad,
      stringify({
        access: {
          groups: { devs: ['alice'] },
          rules: [
            { repos: ['team-a/**'], who: ['group:devs'], allow: ['pull', 'push'] },
            { repos: ['team-a/app'], who: ['alice'], deny: ['push'] },
          ],
        },
      }),
    );
    const chk = await sluice(['policy', 'check', bad]);
    assert.equal(chk.code, 0);
    assert.match(chk.stdout, /warning: rule 2 is unreachable: rule 1/);
    await writeFile(bad, stringify({ access: { rules: [{ repos: ['@nope'], who: ['*'], allow: ['pull'] }] } }));
    const err = await sluice(['policy', 'check', bad]);
    assert.equal(err.code, 1);
    assert.match(err.stdout, /set @nope is not defined/);
    await writeFile(bad, stringify({ access: { rules: [{ repos: ['x'], who: ['*'], allow: ['pul'] }] } }));
    const schema = await sluice(['policy', 'check', bad]);
    assert.equal(schema.code, 1);
    assert.match(schema.stderr, /access\.rules\.0\.allow\.0/);
  } finally {
    await s.cleanup();
  }
});

test("a bcrypt htpasswd file from Apache's htpasswd -bB, with Distribution's auth.htpasswd keys", async (t) => {
  if (!needTools(t, 'htpasswd')) return;
  const s = await scratch();
  try {
    const file = join(s.dir, 'htpasswd');
    await runOk('htpasswd', ['-bBc', file, 'alice', 's3cret:with:colons']);
    await runOk('htpasswd', ['-bB', '-C', '6', file, 'bob', 'bobs-password']);
    assert.match(await readFile(file, 'utf8'), /^alice:\$2y\$05\$/);
    // No access: section: like Distribution, any authenticated user may do everything.
    const reg = await startRegistry({ auth: { htpasswd: { realm: 'Registry Realm', path: file } } });
    try {
      const base = await fetch(`${reg.url}/v2/`);
      assert.equal(base.status, 401);
      assert.match(base.headers.get('www-authenticate') ?? '', /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token",service="sluice"$/);
      assert.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('alice', 's3cret:with:colons') } })).status, 200);
      assert.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('bob', 'bobs-password') } })).status, 200);
      assert.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('bob', 's3cret:with:colons') } })).status, 401);
      const up = await fetch(`${reg.url}/v2/any/thing/blobs/uploads/`, { method: 'POST', headers: { authorization: basic('bob', 'bobs-password') } });
      assert.equal(up.status, 202);
      assert.equal((await fetch(`${reg.url}/v2/any/thing/blobs/uploads/`, { method: 'POST' })).status, 401);
    } finally {
      await reg.close();
    }
  } finally {
    await s.cleanup();
  }
});
