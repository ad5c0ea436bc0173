import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  accessConfigSchema,
  checkAccessConfig,
  checkPolicy,
  compilePatterns,
  compilePolicy,
  decide,
  policySpecFrom,
  splitPattern,
  type KnownPrincipals,
  type Principal,
  type Target,
} from '../../src/policy/index.js';
import { EXAMPLE_ACCESS } from '../auth/fixture.js';

const alice: Principal = { kind: 'user', name: 'alice' };
const anon: Principal = { kind: 'anonymous' };
const DIGEST = `sha256:${'ab'.repeat(32)}`;

/** Which of the targets one pattern matches, as `repo[:tag|@digest]` strings. */
function matched(pattern: string, targets: Target[], who: Principal = anon): string[] {
  const [p] = compilePatterns([pattern], {});
  return targets
    .filter((t) => p!.matches(t, who))
    .map((t) => `${t.repository}${t.tag ? `:${t.tag}` : ''}${t.digest ? `@${t.digest}` : ''}`);
}

test('a pattern is split into its name and its tag or digest; a host:port prefix is not a tag', () => {
  assert.deepEqual(splitPattern('team-a/**:v*'), { name: 'team-a/**', tag: 'v*' });
  assert.deepEqual(splitPattern('team-a/**'), { name: 'team-a/**' });
  assert.deepEqual(splitPattern('team-a/**@sha256:*'), { name: 'team-a/**', digest: 'sha256:*' });
  assert.deepEqual(splitPattern('localhost:5000/team/**'), { name: 'localhost:5000/team/**' });
  assert.deepEqual(splitPattern('localhost:5000/team/**:v*'), { name: 'localhost:5000/team/**', tag: 'v*' });
  assert.deepEqual(splitPattern('**:{v1,v2}'), { name: '**', tag: '{v1,v2}' });
});

test('** before :tag still crosses segments, and covers the namespace itself as it does for names', () => {
  const targets: Target[] = [
    { repository: 'team-a/app', tag: 'v1' },
    { repository: 'team-a/x/app', tag: 'v1' },
    { repository: 'team-a/x/y/z', tag: 'v2.0' },
    { repository: 'team-a', tag: 'v1' },
    { repository: 'team-a/x/app', tag: 'latest' },
    { repository: 'team-a/x/app' },
    { repository: 'team-a/x/app', digest: DIGEST },
    { repository: 'team-ab/app', tag: 'v1' },
    { repository: 'team-b/app', tag: 'v1' },
  ];
  assert.deepEqual(matched('team-a/**:v*', targets), [
    'team-a/app:v1',
    'team-a/x/app:v1',
    'team-a/x/y/z:v2.0',
    'team-a:v1',
  ]);
  // The name half behaves exactly as a name-only pattern does.
  assert.deepEqual(
    matched(
      'team-a/**',
      targets.filter((t) => t.tag === 'v1'),
    ),
    ['team-a/app:v1', 'team-a/x/app:v1', 'team-a:v1'],
  );
  assert.deepEqual(matched('team-a/*:v*', targets), ['team-a/app:v1']);
  assert.deepEqual(matched('**:v1', targets), [
    'team-a/app:v1',
    'team-a/x/app:v1',
    'team-a:v1',
    'team-ab/app:v1',
    'team-b/app:v1',
  ]);
  assert.deepEqual(matched('team-a/**@sha256:ab*', targets), [`team-a/x/app@${DIGEST}`]);
  assert.deepEqual(
    matched(
      '$user/**:v*',
      [
        { repository: 'alice/x/y', tag: 'v3' },
        { repository: 'alice', tag: 'v3' },
        { repository: 'bob/x', tag: 'v3' },
      ],
      alice,
    ),
    ['alice/x/y:v3', 'alice:v3'],
  );
  // Registry hosts: the usual spellings still apply, and a port is part of the name.
  const hub: Target[] = [
    { repository: 'docker.io/library/nginx', tag: '1.25' },
    { repository: 'docker.io/library/nginx', tag: '2' },
  ];
  assert.deepEqual(matched('docker.io/library/*:1.*', hub), ['docker.io/library/nginx:1.25']);
  assert.deepEqual(matched('nginx:1.*', hub), ['docker.io/library/nginx:1.25']);
  assert.deepEqual(
    matched('localhost:5000/team/**:v*', [
      { repository: 'localhost:5000/team/x/app', tag: 'v1' },
      { repository: 'localhost:5000/team/x/app' },
    ]),
    ['localhost:5000/team/x/app:v1'],
  );
  assert.throws(() => compilePatterns(['team-a/app:'], {}), /empty tag/);
  assert.throws(() => compilePatterns([':v1'], {}), /names no repository/);
});

test("the README's immutable-release rule protects nested repositories and the namespace itself", () => {
  const p = compilePolicy(policySpecFrom(accessConfigSchema.parse(EXAMPLE_ACCESS)));
  for (const repository of ['team-a/x/app', 'team-a', 'team-a/app']) {
    const d = decide(p, { principal: alice, action: 'overwrite', target: { repository, tag: 'v1' } });
    assert.equal(d.allowed, false, repository);
    assert.equal(d.rule, 1, repository);
    assert.equal(d.pattern, 'team-a/**:v*');
    assert.equal(
      decide(p, { principal: alice, action: 'overwrite', target: { repository, tag: 'latest' } }).allowed,
      true,
      `${repository}:latest`,
    );
    assert.equal(
      decide(p, { principal: alice, action: 'push', target: { repository, tag: 'v1' } }).allowed,
      true,
      `${repository} push`,
    );
  }
});

test('policy check judges a tag pattern by name and tag, so a narrower later rule is found unreachable', () => {
  const spec = policySpecFrom(
    accessConfigSchema.parse({
      rules: [
        { repos: ['team-a/**:v*'], who: ['*'], deny: ['overwrite'] },
        { repos: ['team-a/x/app:v2'], who: ['alice'], deny: ['overwrite'] },
        { repos: ['team-a/**'], who: ['*'], allow: ['overwrite'] },
        { repos: ['team-a/x/app:latest'], who: ['alice'], deny: ['overwrite'] },
      ],
    }),
  );
  const f = checkPolicy(spec);
  assert.deepEqual(
    f.map((x) => [x.rule, x.message]),
    [
      [2, 'rule 2 is unreachable: rule 1 already decides everything it covers'],
      [4, 'rule 4 is unreachable: rule 3 already decides everything it covers'],
    ],
  );
});

test('checkAccessConfig reports every problem at once, rules by 1-based number, with the values that would do', () => {
  const raw = {
    groups: { devs: ['alice', 'dave', 'robot:buidler'] },
    sets: { official: ['docker.io/library/*', 'bad:'] },
    rules: [
      { repos: ['@nope'], who: ['*'], allow: ['pull'] },
      { repos: ['team-a/**'], who: ['group:ghosts', 'alcie'], allow: ['pull'] },
      { repos: ['x'], who: ['*'], allow: ['pul', 'push'], deny: ['fly'] },
      { repos: ['y'], who: ['*'], alow: ['pull'] },
      { repos: ['@official'], allow: ['pull'] },
      { repos: ['z'], who: ['robot:builder', 'robot:nobody', 'user:*'], allow: 'pull' },
    ],
  };
  const known: KnownPrincipals = {
    users: { from: 'the htpasswd file users', has: (n) => ['alice', 'bob'].includes(n), names: ['alice', 'bob'] },
    robots: { from: 'the robot file robots.json', has: (n) => n === 'builder', names: ['builder'] },
  };
  const { findings, spec } = checkAccessConfig(raw, { known, hasCredentials: true });
  assert.equal(spec, undefined, 'a section that does not parse gives no policy');
  const lines = findings.map((f) => `${f.level} ${f.rule ?? '-'} ${f.message}`);
  assert.deepEqual(lines, [
    'error 1 rule 1: set @nope is not defined under access.sets',
    'error 2 rule 2: group ghosts is not defined under access.groups',
    'warning 2 rule 2: user alcie is not in the htpasswd file users (did you mean alice?)',
    "error 3 rule 3: unknown action 'pul' (valid: pull, push, delete, overwrite, list; * for all)",
    "error 3 rule 3: unknown action 'fly' (valid: pull, push, delete, overwrite, list; * for all)",
    "error 4 rule 4: unknown key 'alow' (valid: name, repos, who, allow, deny; did you mean allow?)",
    'error 5 rule 5: who is required',
    'warning 6 rule 6: robot nobody is not in the robot file robots.json',
    'error - set @official: pattern "bad:" has an empty tag after ":"',
    'warning - group devs: user dave is not in the htpasswd file users',
    'warning - group devs: robot buidler is not in the robot file robots.json (did you mean builder?)',
  ]);
  // Accounts of a kind that is not configured at all can never log in.
  const none = checkAccessConfig(
    { rules: [{ repos: ['**'], who: ['alice', 'robot:ci'], allow: ['pull'] }] },
    { known: {}, hasCredentials: false },
  );
  assert.deepEqual(
    none.findings.map((f) => f.message),
    [
      'rule 1: user alice can never log in: no auth.htpasswd file is configured',
      'rule 1: robot ci can never log in: no auth.robots file is configured',
    ],
  );
  assert.equal(none.spec?.rules.length, 1);
  // With no rules and no way to log in, the policy checked is the open one the registry runs.
  assert.deepEqual(checkAccessConfig(undefined, { hasCredentials: false }).spec?.rules[0]?.who, ['*']);
  assert.deepEqual(checkAccessConfig(undefined, { hasCredentials: true }).spec?.rules[0]?.who, ['authenticated']);
});

test('the access schema names an unknown action with the valid ones, for sluice serve too', () => {
  const r = accessConfigSchema.safeParse({ rules: [{ repos: ['x'], who: ['*'], allow: ['pull', 'pul'] }] });
  assert.equal(r.success, false);
  assert.deepEqual(
    r.error!.issues.map((i) => [i.path.join('.'), i.message]),
    [['rules.0.allow.1', "unknown action 'pul' (valid: pull, push, delete, overwrite, list; * for all)"]],
  );
  // One action needs no list, as one pattern or one principal need none.
  assert.deepEqual(accessConfigSchema.parse({ rules: [{ repos: 'x', who: '*', allow: 'pull' }] }).rules![0]!.allow, [
    'pull',
  ]);
});
