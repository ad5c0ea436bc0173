import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  accessConfigSchema,
  checkPolicy,
  compilePolicy,
  decide,
  policySpecFrom,
  repositorySpellings,
  type Principal,
  type Target,
} from '../../src/policy/index.js';
import { EXAMPLE_ACCESS } from '../auth/fixture.js';

const alice: Principal = { kind: 'user', name: 'alice' };
const bob: Principal = { kind: 'user', name: 'bob' };
const builder: Principal = { kind: 'robot', name: 'builder' };
const anon: Principal = { kind: 'anonymous' };

function policyOf(access: unknown) {
  return compilePolicy(policySpecFrom(accessConfigSchema.parse(access)));
}

const example = policyOf(EXAMPLE_ACCESS);
const d = (p: Principal, action: 'pull' | 'push' | 'delete' | 'overwrite' | 'list', target: Target) =>
  decide(example, { principal: p, action, target });

test('a reference is matched in its usual spellings', () => {
  assert.deepEqual(repositorySpellings('docker.io/library/nginx'), [
    'nginx',
    'library/nginx',
    'docker.io/library/nginx',
  ]);
  assert.deepEqual(repositorySpellings('nginx'), ['nginx', 'library/nginx']);
  assert.deepEqual(repositorySpellings('team-a/app'), ['team-a/app']);
  const p = policyOf({ rules: [{ repos: ['nginx'], who: ['*'], allow: ['pull'] }] });
  for (const repo of ['nginx', 'library/nginx', 'docker.io/library/nginx']) {
    assert.equal(decide(p, { principal: anon, action: 'pull', target: { repository: repo } }).allowed, true, repo);
  }
  assert.equal(
    decide(p, { principal: anon, action: 'pull', target: { repository: 'docker.io/other/nginx' } }).allowed,
    false,
  );
});

test('* stays in one segment, ** crosses, ? and {a,b} work, :tag patterns need the tag', () => {
  const p = policyOf({
    rules: [
      { repos: ['one/*'], who: ['*'], allow: ['pull'] },
      { repos: ['deep/**'], who: ['*'], allow: ['push'] },
      { repos: ['{x,y}/ap?'], who: ['*'], allow: ['delete'] },
      { repos: ['tags/app:1.*'], who: ['*'], allow: ['overwrite'] },
    ],
  });
  const ok = (action: 'pull' | 'push' | 'delete' | 'overwrite', target: Target) =>
    decide(p, { principal: anon, action, target }).allowed;
  assert.equal(ok('pull', { repository: 'one/a' }), true);
  assert.equal(ok('pull', { repository: 'one/a/b' }), false);
  assert.equal(ok('push', { repository: 'deep/a/b/c' }), true);
  assert.equal(ok('delete', { repository: 'y/app' }), true);
  assert.equal(ok('delete', { repository: 'z/app' }), false);
  assert.equal(ok('delete', { repository: 'x/apps' }), false);
  assert.equal(ok('overwrite', { repository: 'tags/app', tag: '1.2' }), true);
  assert.equal(ok('overwrite', { repository: 'tags/app', tag: '2.0' }), false);
  assert.equal(ok('overwrite', { repository: 'tags/app' }), false);
});

test('the first applicable rule decides and names itself; no rule means denied', () => {
  const r = d(anon, 'push', { repository: 'docker.io/library/nginx' });
  assert.equal(r.allowed, false);
  assert.equal(r.rule, 5);
  assert.equal(r.pattern, 'docker.io/**');
  assert.match(r.reason, /denied by rule 5/);
  // A specific allow above a general deny.
  const pull = d(anon, 'pull', { repository: 'docker.io/library/nginx' });
  assert.equal(pull.allowed, true);
  assert.equal(pull.rule, 4);
  assert.equal(pull.pattern, '@official: docker.io/library/*');
  const none = d(bob, 'pull', { repository: 'secret/app' });
  assert.equal(none.allowed, false);
  assert.equal(none.by, 'default');
  assert.match(none.reason, /no rule allows it/);
});

test('groups, robots, authenticated, anonymous and $user', () => {
  assert.equal(d(alice, 'push', { repository: 'team-a/app' }).allowed, true);
  assert.equal(d(builder, 'push', { repository: 'team-a/app' }).allowed, true);
  assert.equal(d(bob, 'push', { repository: 'team-a/app' }).allowed, false);
  assert.equal(d(alice, 'delete', { repository: 'alice/tools/x' }).allowed, true);
  assert.equal(d(bob, 'delete', { repository: 'alice/tools/x' }).allowed, false);
  // $user is only a user's own name, never a robot's.
  assert.equal(d({ kind: 'robot', name: 'alice' }, 'push', { repository: 'alice/x' }).allowed, false);
  // A user name with glob syntax cannot widen $user.
  assert.equal(d({ kind: 'user', name: '*' }, 'push', { repository: 'alice/x' }).allowed, false);
  assert.equal(d(anon, 'pull', { repository: 'public/x' }).allowed, true);
  assert.equal(d(anon, 'list', {}).allowed, false);
  assert.equal(d(bob, 'list', {}).allowed, true);
  const p = policyOf({ rules: [{ repos: ['**'], who: ['anonymous'], allow: ['pull'] }] });
  assert.equal(decide(p, { principal: anon, action: 'pull', target: { repository: 'a' } }).allowed, true);
  assert.equal(decide(p, { principal: bob, action: 'pull', target: { repository: 'a' } }).allowed, false);
});

test('overwrite rules make tags immutable; read-only patterns refuse writes', () => {
  const v = d(alice, 'overwrite', { repository: 'team-a/app', tag: 'v1' });
  assert.equal(v.allowed, false);
  assert.match(v.reason, /rule 1 "immutable releases"/);
  assert.equal(d(alice, 'overwrite', { repository: 'team-a/app', tag: 'latest' }).allowed, true);
  const ro = d(alice, 'push', { repository: 'frozen/x' });
  assert.equal(ro.allowed, false);
  assert.equal(ro.by, 'readonly');
  assert.match(ro.reason, /read-only pattern "frozen\/\*\*"/);
  assert.equal(d(alice, 'pull', { repository: 'frozen/x' }).allowed, true);
  const all = compilePolicy({ ...policySpecFrom(accessConfigSchema.parse(EXAMPLE_ACCESS)), readonlyAll: true });
  assert.equal(decide(all, { principal: alice, action: 'push', target: { repository: 'alice/x' } }).allowed, false);
});

test('policy check reports unknown sets and groups and unreachable rules', () => {
  const spec = (rules: unknown[], extra: Record<string, unknown> = {}) =>
    policySpecFrom(accessConfigSchema.parse({ ...extra, rules }));
  assert.match(
    checkPolicy(spec([{ repos: ['@nope'], who: ['*'], allow: ['pull'] }]))[0]!.message,
    /rule 1: set @nope is not defined/,
  );
  assert.match(
    checkPolicy(spec([{ repos: ['**'], who: ['group:ghosts'], allow: ['pull'] }]))[0]!.message,
    /group ghosts is not defined/,
  );
  const f = checkPolicy(
    spec([
      { repos: ['team-a/**'], who: ['authenticated'], allow: ['pull', 'push'] },
      { repos: ['team-a/app'], who: ['alice'], deny: ['push'] },
      { repos: ['team-a/app', 'other/x'], who: ['alice'], allow: ['pull'] },
      { repos: ['**'], who: ['*'], deny: ['pull'] },
      { repos: ['x/**'], who: ['anonymous'], allow: ['pull'] },
    ]),
  );
  const byRule = (n: number) => f.filter((x) => x.rule === n).map((x) => x.message);
  assert.match(byRule(2).join(), /rule 2 is unreachable: rule 1/);
  assert.deepEqual(byRule(3), []);
  assert.match(byRule(5).join(), /rule 5 is unreachable: rule 4/);
  assert.deepEqual(checkPolicy(policySpecFrom(accessConfigSchema.parse(EXAMPLE_ACCESS))), []);
});
