import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../../src/config/schema.js';
import { compileEviction, judgeEviction } from '../../src/policy/eviction.js';
import {
  compileRetention,
  judgeTags,
  retentionProblems,
  rulesFor,
  untaggedKeepMs,
  type TagTimes,
} from '../../src/policy/retention.js';
import { retentionSchema, type RetentionRuleConfig } from '../../src/policy/retention-config.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-12-07T12:00:00Z');

/** Parses rules as the config would, then compiles them. */
function rules(raw: unknown[]) {
  return compileRetention(retentionSchema.parse(raw) as RetentionRuleConfig[]);
}

/** Tags pushed one day apart, the first one `n` days ago. */
function daily(names: string[], daysAgo = names.length): TagTimes[] {
  return names.map((tag, i) => ({ tag, pushed: NOW - (daysAgo - i) * DAY }));
}

function kept(verdicts: ReturnType<typeof judgeTags>): string[] {
  return (verdicts ?? [])
    .filter((v) => v.kept)
    .map((v) => v.tag)
    .sort();
}

test('judgeTags() keeps the latest N by push time and names the rule in every verdict', () => {
  const r = rules([{ images: ['team-a/**'], latest: 2 }]);
  const v = judgeTags(rulesFor(r, 'team-a/app'), daily(['a', 'b', 'c', 'd']), NOW)!;
  assert.deepEqual(kept(v), ['c', 'd']);
  assert.equal(v.find((x) => x.tag === 'd')!.reason, 'kept by rule 1 (latest 2)');
  assert.match(
    v.find((x) => x.tag === 'a')!.reason,
    /^deleted: pushed 2026-12-03, never pulled; rule 1 not among its latest 2$/,
  );
});

test('rulesFor() applies no rule to a repository no pattern matches: judgeTags() then keeps everything', () => {
  const r = rules([{ images: ['team-a/**'], latest: 1 }]);
  assert.deepEqual(rulesFor(r, 'team-b/app'), []);
  assert.equal(judgeTags(rulesFor(r, 'team-b/app'), daily(['a', 'b']), NOW), null);
  // The same pattern engine as access rules: `nginx` is the cached docker.io/library/nginx.
  assert.equal(rulesFor(rules([{ images: ['nginx'], latest: 1 }]), 'docker.io/library/nginx').length, 1);
});

test('judgeTags() lets each latest-N rule keep its own tags: several such rules neither delete nor keep everything (Zot #3804)', () => {
  const r = rules([
    { images: ['app'], tags: ['v*'], latest: 2 },
    { images: ['app'], tags: ['dev-*'], latest: 1 },
  ]);
  const v = judgeTags(rulesFor(r, 'app'), daily(['v1', 'dev-1', 'v2', 'dev-2', 'v3', 'dev-3', 'other']), NOW)!;
  assert.deepEqual(kept(v), ['dev-3', 'v2', 'v3']);
  assert.equal(v.find((x) => x.tag === 'dev-3')!.reason, 'kept by rule 2 (latest 1)');
  assert.match(
    v.find((x) => x.tag === 'other')!.reason,
    /rule 1 speaks only of tags v\*; rule 2 speaks only of tags dev-\*/,
  );
  // Zot #3804 as reported: one rule per prefix, latest 1 each, a repository with one env18 tag and none of env19's.
  const perPrefix = rules([
    { images: ['**'], tags: ['env18-*'], latest: 1 },
    { images: ['**'], tags: ['env19-*'], latest: 1 },
  ]);
  const old = [{ tag: 'env18-abc', pushed: NOW - 32 * DAY }];
  assert.deepEqual(kept(judgeTags(rulesFor(perPrefix, 'svc'), old, NOW)), ['env18-abc']);
});

test('judgeTags() keeps tags pulled or pushed within a duration, and says when a deleted tag was last pulled', () => {
  const r = rules([
    { images: ['**'], pulledwithin: '30d' },
    { images: ['**'], pushedwithin: '2d' },
  ]);
  const tags: TagTimes[] = [
    { tag: 'old-pulled', pushed: NOW - 400 * DAY, pulled: NOW - 3 * DAY },
    { tag: 'old-stale', pushed: NOW - 400 * DAY, pulled: Date.parse('2026-09-01T10:00:00Z') },
    { tag: 'new', pushed: NOW - DAY },
  ];
  const v = judgeTags(rulesFor(r, 'x/y'), tags, NOW)!;
  assert.deepEqual(kept(v), ['new', 'old-pulled']);
  assert.equal(v.find((x) => x.tag === 'old-pulled')!.reason, 'kept by rule 1 (pulled within 30d: last 2026-12-04)');
  assert.equal(v.find((x) => x.tag === 'new')!.reason, 'kept by rule 2 (pushed within 2d: 2026-12-06)');
  assert.equal(
    v.find((x) => x.tag === 'old-stale')!.reason,
    'deleted: pushed 2025-11-02, pulled last 2026-09-01; rule 1 keeps 30d since a pull; rule 2 keeps 2d since a push',
  );
});

test('judgeTags() keeps the latest N versions per minor within a semver range, and tag globs always', () => {
  const r = rules([
    { name: 'releases', images: ['app'], semver: '>=1.0.0', perminor: 2 },
    { images: ['app'], tags: ['stable', 'lts-*'] },
  ]);
  const names = [
    '0.9.0',
    '1.0.0',
    '1.0.1',
    '1.0.2',
    '1.1.0',
    'v1.1.3',
    '1.1.2',
    '2.0.0-rc1',
    'stable',
    'lts-1',
    'latest',
  ];
  const v = judgeTags(rulesFor(r, 'app'), daily(names), NOW)!;
  assert.deepEqual(kept(v), ['1.0.1', '1.0.2', '1.1.2', 'lts-1', 'stable', 'v1.1.3']);
  assert.equal(
    v.find((x) => x.tag === 'v1.1.3')!.reason,
    'kept by rule 1 "releases" (semver >=1.0.0, latest 2 of 1.1)',
  );
  assert.equal(v.find((x) => x.tag === 'stable')!.reason, 'kept by rule 2 (tags stable, lts-*)');
  assert.match(
    v.find((x) => x.tag === '1.0.0')!.reason,
    /rule 1 "releases" keeps the latest 2 per minor of semver >=1\.0\.0/,
  );
});

test('judgeTags() leaves tags alone under a rule that speaks only of untagged manifests', () => {
  const r = rules([{ images: ['app'], untagged: '7d' }]);
  assert.equal(judgeTags(rulesFor(r, 'app'), daily(['a']), NOW), null);
  assert.equal(untaggedKeepMs(rulesFor(r, 'app'))!.ms, 7 * DAY);
  // Of several, the longest wins: any rule keeps.
  assert.equal(
    untaggedKeepMs(
      rules([
        { images: ['app'], untagged: '7d' },
        { images: ['**'], untagged: '2w' },
      ]),
    )!.ms,
    14 * DAY,
  );
});

test('retentionSchema refuses bad durations, bad semver ranges and perminor without a range', () => {
  const problems = (raw: unknown) => {
    const r = configSchema.safeParse({ retention: raw });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  assert.deepEqual(problems([{ images: ['a'], pulledwithin: '30 days' }]), [
    'retention.0.pulledwithin: expected a duration such as 12h, 30d, 2w',
  ]);
  assert.deepEqual(problems([{ images: ['a'], untagged: 'soon' }]), [
    'retention.0.untagged: expected a duration such as 12h, 30d, 2w',
  ]);
  assert.deepEqual(problems([{ images: ['a'], semver: '>=1.x.y.z <<' }]), [
    'retention.0.semver: expected a semver range such as ">=1.0.0 <2"',
  ]);
  assert.deepEqual(problems([{ images: ['a'], perminor: 2 }]), [
    'retention.0.perminor: perminor needs semver (a range; ">=0" for every version)',
  ]);
  assert.deepEqual(problems([{ images: ['a'], latest: 0 }]).length, 1);
  assert.deepEqual(problems([{ images: ['a'], keep: 3 }]).length, 1, 'unknown keys are refused');
  assert.deepEqual(
    problems([{ images: ['a'], latest: 3, semver: '^1.2', perminor: 1, untagged: '1d', pushedwithin: '12h' }]),
    [],
  );
  const evict = (raw: unknown) => configSchema.safeParse({ upstreams: { 'docker.io': { evict: raw } } }).success;
  assert.equal(evict({ unpulled: '30d', maxsize: '20GiB' }), true);
  assert.equal(evict({ unpulled: 'a month' }), false);
  assert.equal(evict({ maxsize: 'lots' }), false);
  const flow = (raw: unknown) =>
    configSchema.safeParse({ flows: [{ images: ['docker.io/library/*'], evict: raw }] }).success;
  assert.equal(flow({ unpulled: '7d' }), true);
  assert.equal(flow({ unpulled: 'a week' }), false);
  assert.equal(flow({ maxsize: '1GiB' }), false, 'the size cap is per upstream');
});

test('retentionProblems() names a rule whose image pattern cannot be used', () => {
  assert.deepEqual(retentionProblems([{ images: ['app:v*'] }], {}), [
    'retention: retention rule 1: image "app:v*" names a tag or digest; write tags: for that',
  ]);
  assert.deepEqual(retentionProblems([{ images: ['@nope'] }], {}), [
    'retention: retention rule 1: set @nope is not defined under access.sets',
  ]);
  assert.deepEqual(retentionProblems([{ images: ['@mine'] }], { mine: ['team-a/**'] }), []);
});

test('judgeEviction() evicts what nobody pulled within the time, counting a never-pulled image from when it was cached', () => {
  const spec = compileEviction('upstreams.docker.io.evict', { unpulled: '30d' });
  const v = judgeEviction(
    [
      { key: 'docker.io/library/a:1', cached: NOW - 100 * DAY, pulled: NOW - DAY, digests: [] },
      {
        key: 'docker.io/library/a:2',
        cached: NOW - 100 * DAY,
        pulled: Date.parse('2026-09-01T00:00:00Z'),
        digests: [],
      },
      { key: 'docker.io/library/a:3', cached: NOW - 10 * DAY, digests: [] },
      { key: 'docker.io/library/a:4', cached: NOW - 31 * DAY, digests: [] },
    ],
    spec,
    new Map(),
    NOW,
  );
  assert.deepEqual(
    v.map((x) => x.evicted),
    [false, true, false, true],
  );
  assert.equal(v[1]!.reason, 'evicted: pulled last 2026-09-01; upstreams.docker.io.evict keeps 30d unpulled');
  assert.equal(v[3]!.reason, 'evicted: never pulled, cached 2026-11-06; upstreams.docker.io.evict keeps 30d unpulled');
});

test('judgeEviction() evicts least recently used first until the cache fits its size cap, counting shared digests once', () => {
  const spec = compileEviction('upstreams.docker.io.evict', { maxsize: 250 });
  const sizes = new Map([
    ['base', 100],
    ['a', 50],
    ['b', 50],
    ['c', 50],
  ]);
  const v = judgeEviction(
    [
      { key: 'x:a', cached: NOW - 5 * DAY, pulled: NOW - 4 * DAY, digests: ['base', 'a'] },
      { key: 'x:b', cached: NOW - 5 * DAY, pulled: NOW - 1 * DAY, digests: ['base', 'b'] },
      { key: 'x:c', cached: NOW - 5 * DAY, pulled: NOW - 3 * DAY, digests: ['base', 'c'] },
      { key: 'x:d', cached: NOW - 2 * DAY, digests: ['base'] },
    ],
    spec,
    sizes,
    NOW,
  );
  // 250 in all (base once): over the cap? no; 100+50*3 = 250 is within it.
  assert.deepEqual(
    v.map((x) => x.evicted),
    [false, false, false, false],
  );
  const tighter = judgeEviction(
    [
      { key: 'x:a', cached: NOW - 5 * DAY, pulled: NOW - 4 * DAY, digests: ['base', 'a'] },
      { key: 'x:b', cached: NOW - 5 * DAY, pulled: NOW - 1 * DAY, digests: ['base', 'b'] },
      { key: 'x:c', cached: NOW - 5 * DAY, pulled: NOW - 3 * DAY, digests: ['base', 'c'] },
    ],
    compileEviction('upstreams.docker.io.evict', { maxsize: '160B' }),
    sizes,
    NOW,
  );
  assert.deepEqual(
    tighter.map((x) => x.evicted),
    [true, false, true],
  );
  assert.match(
    tighter[0]!.reason,
    /^evicted: pulled last 2026-12-03, least recently used while the cache held 250 bytes; upstreams\.docker\.io\.evict caps it at 160B$/,
  );
});
