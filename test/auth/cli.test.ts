import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { scratch } from '../helpers/clients.js';
import { startRegistry } from '../helpers/registry.js';
import { sluice } from '../helpers/sluice-cli.js';
import { needTools, runOk } from '../helpers/tools.js';
import { basic, EXAMPLE_ACCESS, writeHtpasswd } from './fixture.js';

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
      const ok = await fetch(`${reg.url}/v2/team-a/app/tags/list`, {
        headers: { authorization: basic('robot$builder', token) },
      });
      assert.equal(ok.status, 404, 'authorized; the repository just does not exist');
      assert.equal(
        (
          await fetch(`${reg.url}/v2/alice/app/tags/list`, {
            headers: { authorization: basic('robot$builder', token) },
          })
        ).status,
        403,
      );
      assert.equal((await sluice(['robot', 'delete', 'builder', '-c', cfg])).code, 0);
      assert.equal(
        (
          await fetch(`${reg.url}/v2/team-a/app/tags/list`, {
            headers: { authorization: basic('robot$builder', token) },
          })
        ).status,
        401,
      );
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
    assert.match(
      push.stdout,
      /^push: ALLOWED\n {2}rule: +rule 2: repos \[team-a\/\*\*\] who \[group:devs, robot:builder\]/,
    );
    assert.match(push.stdout, /pattern: team-a\/\*\*/);
    const anon = await sluice([
      'policy',
      'explain',
      '-c',
      cfg,
      '--anonymous',
      '--action',
      'pull,push',
      'docker.io/library/nginx:1',
    ]);
    assert.equal(anon.code, 1, 'push is denied');
    assert.match(
      anon.stdout,
      /pull: ALLOWED[\s\S]*pattern: @official: docker.io\/library\/\*[\s\S]*push: DENIED[\s\S]*rule 5/,
    );
    const grp = await sluice([
      'policy',
      'explain',
      '-c',
      cfg,
      '--user',
      'dave',
      '--group',
      'devs',
      '--action',
      'push',
      'team-a/x',
    ]);
    assert.match(grp.stdout, /push: ALLOWED/);
    assert.equal(grp.code, 0);
    const robot = await sluice([
      'policy',
      'explain',
      '-c',
      cfg,
      '--robot',
      'builder',
      '--action',
      'delete',
      '--json',
      'team-a/x',
    ]);
    assert.deepEqual(JSON.parse(robot.stdout)[0].allowed, false);
    assert.equal(robot.code, 1);
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
    assert.match(
      schema.stdout,
      /^error: rule 1: unknown action 'pul' \(valid: pull, push, delete, overwrite, list; \* for all\)$/m,
    );
  } finally {
    await s.cleanup();
  }
});

/** Asserts a failed command said why in one line, with no stack trace. */
function oneLineFailure(r: { code: number | null; stdout: string; stderr: string }, why: RegExp, what: string): void {
  assert.notEqual(r.code, 0, `${what}: exit code`);
  assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: no stack trace`);
  assert.match(r.stderr, why, what);
}

test('sluice policy explain checks every option value in one line and exits 1 when an action is denied', async () => {
  const s = await scratch();
  try {
    const cfg = join(s.dir, 'sluice.yml');
    const robots = join(s.dir, 'robots.json');
    await writeFile(cfg, stringify({ auth: { robots: { path: robots } }, access: EXAMPLE_ACCESS }));
    const explain = (...args: string[]) => sluice(['policy', 'explain', '-c', cfg, ...args]);
    const [allowed, denied, mixed, asRobotUser] = await Promise.all([
      explain('--user', 'alice', '--action', 'pull,push', 'team-a/app:1'),
      explain('--user', 'bob', '--action', 'pull', 'team-a/app:1'),
      explain('--user', 'alice', '--action', 'push,delete', 'team-a/app'),
      // The registry reads the Basic user name robot$builder as the robot.
      explain('--user', 'robot$builder', '--action', 'push', 'team-a/app'),
    ]);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.equal(denied.code, 1);
    assert.match(denied.stdout, /^pull: DENIED\n/);
    assert.equal(mixed.code, 1, 'one denied action is enough');
    assert.match(mixed.stdout, /push: ALLOWED[\s\S]*delete: DENIED/);
    assert.equal(asRobotUser.code, 0, asRobotUser.stdout);
    assert.match(asRobotUser.stdout, /for robot:builder/);
    const bad: [string[], RegExp][] = [
      [['--user', 'alice', '--robot', 'builder', 'x'], /give one of --user, --robot, --anonymous/],
      [['--anonymous', '--group', 'devs', 'x'], /--group needs --user or --robot/],
      [['--group', 'devs', 'x'], /--group needs --user or --robot/],
      [['--user', 'alice', '--group', 'dev', 'x'], /--group dev: no such group under access\.groups \(groups: devs\)/],
      [['--robot', 'Bad Name', 'x'], /--robot "Bad Name" is not a robot name/],
      [['--user', 'a:b', 'x'], /--user "a:b" is not a user name/],
      [
        ['--user', 'alice', '--action', 'pul', 'x'],
        /unknown action 'pul' \(valid: pull, push, delete, overwrite, list; \* for all\)/,
      ],
      [['--user', 'alice', '--action', 'pull,', 'x'], /has an empty entry/],
      [['--user', 'alice', 'Team/App'], /"Team\/App" is not a repository name/],
      [['--user', 'alice', 'x:bad tag'], /"bad tag" is not a tag/],
      [['--user', 'alice', `x:1@sha256:${'a'.repeat(64)}`], /a tag or a digest, not both/],
      [['--user', 'alice', 'x@sha256:short'], /is not a digest/],
    ];
    const results = await Promise.all(bad.map(([args]) => explain(...args)));
    for (const [i, [args, why]] of bad.entries()) oneLineFailure(results[i]!, why, args.join(' '));
    const missing = await sluice(['policy', 'explain', '-c', join(s.dir, 'nope.yml'), 'x']);
    oneLineFailure(missing, /cannot read config .*nope\.yml/, 'missing config');
    await writeFile(robots, '{not json');
    const [list, del, check] = await Promise.all([
      sluice(['robot', 'list', '-c', cfg]),
      sluice(['robot', 'delete', 'builder', '--config', cfg]),
      sluice(['policy', 'check', '-c', cfg, join(s.dir, 'other.yml')]),
    ]);
    oneLineFailure(list, /auth\.robots\.path: .*robots\.json is not a robot file/, 'robot list, broken file');
    oneLineFailure(del, /auth\.robots\.path: .*robots\.json is not a robot file/, 'robot delete, broken file');
    oneLineFailure(check, /give the config file once/, 'policy check with two files');
    oneLineFailure(
      await sluice(['robot', 'list', '-c', cfg, '--file', robots]),
      /--file .* not both/,
      'robot list --file and -c',
    );
  } finally {
    await s.cleanup();
  }
});

test('sluice policy check reports every error at once by rule number and flags users and robots that do not exist', async () => {
  const s = await scratch();
  try {
    const cfg = join(s.dir, 'sluice.yml');
    const robots = join(s.dir, 'robots.json');
    const users = join(s.dir, 'htpasswd');
    await writeHtpasswd(users, { alice: 'pw-alice-123456', bob: 'pw-bob-1234567' });
    assert.equal((await sluice(['robot', 'create', 'builder', '--file', robots])).code, 0);
    await writeFile(
      cfg,
      stringify({
        auth: { htpasswd: { realm: 'r', path: './htpasswd' }, robots: { path: './robots.json' } },
        access: {
          groups: { devs: ['alice', 'carol'] },
          rules: [
            { repos: ['@nope'], who: ['*'], allow: ['pull'] },
            { repos: ['team-a/**'], who: ['group:ghosts', 'alcie', 'robot:buidler'], allow: ['pull'] },
            { repos: ['x'], who: ['group:devs'], allow: ['pul'] },
            { repos: ['team-a/**:'], who: ['*'], deny: ['overwrite'] },
          ],
        },
      }),
    );
    const r = await sluice(['policy', 'check', '--config', cfg]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stdout,
      [
        'error: rule 1: set @nope is not defined under access.sets',
        'error: rule 2: group ghosts is not defined under access.groups',
        'warning: rule 2: user alcie is not in the htpasswd file ' + users + ' (did you mean alice?)',
        'warning: rule 2: robot buidler is not in the robot file ' + robots + ' (did you mean builder?)',
        "error: rule 3: unknown action 'pul' (valid: pull, push, delete, overwrite, list; * for all)",
        'error: rule 4: pattern "team-a/**:" has an empty tag after ":"',
        'warning: group devs: user carol is not in the htpasswd file ' + users,
        '',
      ].join('\n'),
    );
    assert.equal(r.stderr, `sluice: ${cfg}: 4 errors, 3 warnings\n`);
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
      assert.match(
        base.headers.get('www-authenticate') ?? '',
        /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token",service="sluice"$/,
      );
      assert.equal(
        (await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('alice', 's3cret:with:colons') } })).status,
        200,
      );
      assert.equal(
        (await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('bob', 'bobs-password') } })).status,
        200,
      );
      assert.equal(
        (await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('bob', 's3cret:with:colons') } })).status,
        401,
      );
      const up = await fetch(`${reg.url}/v2/any/thing/blobs/uploads/`, {
        method: 'POST',
        headers: { authorization: basic('bob', 'bobs-password') },
      });
      assert.equal(up.status, 202);
      assert.equal((await fetch(`${reg.url}/v2/any/thing/blobs/uploads/`, { method: 'POST' })).status, 401);
    } finally {
      await reg.close();
    }
  } finally {
    await s.cleanup();
  }
});
