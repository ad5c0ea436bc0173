import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseReference } from '../../src/oci/reference.js';
import { compileFlows, decideFlow } from '../../src/policy/flows.js';
import {
  decide,
  type Decision,
  type Filters,
  type HostReference,
  type Publicness,
} from '../../src/passthrough/decide.js';
import { compileImagePatterns, makePlan } from '../../src/passthrough/plan.js';
import { DEFAULT_REGISTRIES, isConcrete, parseMode, resolveSettings } from '../../src/passthrough/settings.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

function ref(text: string, digests: string[] = [D1], imageId = `sha256:${'a'.repeat(64)}`): HostReference {
  const r = parseReference(text);
  return { text, reference: { ...r, tag: r.tag ?? 'latest' }, imageId, digests };
}

function filters(mode: 'public' | 'all', images: string[] = [], registries = DEFAULT_REGISTRIES): Filters {
  return { mode, registries, patterns: compileImagePatterns(images) };
}

const PUBLIC: Publicness = { public: true, reason: 'anonymous HEAD answered 200' };
const PRIVATE: Publicness = { public: false, reason: 'anonymous HEAD answered 401 for docker.io/konard/secret' };

/** Decides with a registry that answers `answer`; fails when the registry is asked although it should not be. */
function judge(
  r: HostReference,
  f: Filters,
  answer: Publicness | undefined,
  present = false,
): Decision & { asked: boolean } {
  const v = decide(r, f, present);
  if (!('ask' in v)) return { ...v, asked: false };
  assert.ok(answer, `${r.text}: the registry was asked although the test expects no question`);
  const d = decide(r, f, present, answer);
  assert.ok(!('ask' in d));
  return { ...d, asked: true };
}

test('the box example: public + "konard/hive-mind konard/hive-mind-dind" selects exactly those two', () => {
  const f = filters('public', ['konard/hive-mind', 'konard/hive-mind-dind']);
  const kinds = [
    'konard/hive-mind:latest',
    'konard/hive-mind-dind:latest',
    'konard/hive-mind-extra:1',
    'busybox:1',
    'ghcr.io/konard/hive-mind:latest',
  ].map((t) => [t, judge(ref(t), f, PUBLIC).kind]);
  assert.deepEqual(kinds, [
    ['konard/hive-mind:latest', 'copy'],
    ['konard/hive-mind-dind:latest', 'copy'],
    ['konard/hive-mind-extra:1', 'skip: no pattern matches'],
    ['busybox:1', 'skip: no pattern matches'],
    // A pattern without a host means Docker Hub: the same path on another registry is another image.
    ['ghcr.io/konard/hive-mind:latest', 'skip: no pattern matches'],
  ]);
});

test('patterns match the tagged reference and the repository, with and without docker.io/ and library/', () => {
  const spellings = [
    'busybox',
    'library/busybox',
    'docker.io/library/busybox',
    'busybox:1',
    'library/busybox:1',
    'docker.io/library/busybox:1',
    'docker.io/library/*',
    'busy*',
  ];
  for (const p of spellings) assert.equal(judge(ref('busybox:1'), filters('all', [p]), undefined).kind, 'copy', p);
  for (const p of ['busybox:2', 'docker.io/library/busybox:2', 'ghcr.io/library/busybox', 'library/busybox:l*']) {
    assert.equal(judge(ref('busybox:1'), filters('all', [p]), undefined).kind, 'skip: no pattern matches', p);
  }
  // The same reference written in full on the host (`docker tag … docker.io/konard/app:1` lists as konard/app:1, but a daemon may keep either).
  for (const t of ['konard/app:1', 'docker.io/konard/app:1']) {
    for (const p of [
      'konard/app',
      'docker.io/konard/app',
      'konard/app:1',
      'docker.io/konard/app:1',
      'konard/*',
      'docker.io/konard/*:1',
    ]) {
      assert.equal(judge(ref(t), filters('all', [p]), undefined).kind, 'copy', `${t} ~ ${p}`);
    }
    // library/ is only for official images.
    assert.equal(judge(ref(t), filters('all', ['library/konard/app']), undefined).kind, 'skip: no pattern matches');
  }
  // Other registries: in full only.
  const g = ref('ghcr.io/org/tool:v2');
  for (const p of [
    'ghcr.io/org/tool',
    'ghcr.io/org/tool:v2',
    'ghcr.io/org/*',
    'ghcr.io/**',
    '*/org/tool',
    'ghcr.io/org/tool:v*',
  ])
    assert.equal(judge(g, filters('all', [p]), undefined).kind, 'copy', p);
  for (const p of ['org/tool', 'org/*', 'docker.io/org/tool', 'ghcr.io/org/tool:v1'])
    assert.equal(judge(g, filters('all', [p]), undefined).kind, 'skip: no pattern matches', p);
});

test('* stays within a segment and ** crosses segments', () => {
  const deep = ref('quay.io/team/sub/app:1');
  assert.equal(judge(deep, filters('all', ['quay.io/team/*']), undefined).kind, 'skip: no pattern matches');
  assert.equal(judge(deep, filters('all', ['quay.io/team/**']), undefined).kind, 'copy');
  assert.equal(judge(deep, filters('all', ['quay.io/**:1']), undefined).kind, 'copy');
  assert.equal(judge(deep, filters('all', ['quay.io/**:2']), undefined).kind, 'skip: no pattern matches');
  // `*` alone is one segment: official images (`busybox`) and nothing with a namespace.
  assert.equal(judge(ref('busybox:1'), filters('all', ['*']), undefined).kind, 'copy');
  assert.equal(judge(ref('konard/app:1'), filters('all', ['*']), undefined).kind, 'skip: no pattern matches');
  assert.equal(judge(ref('konard/app:1'), filters('all', ['**']), undefined).kind, 'copy');
  assert.equal(judge(deep, filters('all', ['**']), undefined).kind, 'copy');
});

test('a digest pattern matches the digest the name was pulled by', () => {
  assert.equal(judge(ref('busybox:1', [D1]), filters('all', [`busybox@${D1}`]), undefined).kind, 'copy');
  assert.equal(
    judge(ref('busybox:1', [D2]), filters('all', [`busybox@${D1}`]), undefined).kind,
    'skip: no pattern matches',
  );
  assert.equal(
    judge(ref('busybox:1', []), filters('all', [`busybox@${D1}`]), undefined).kind,
    'skip: no pattern matches',
  );
});

test('public: the registry allowlist, then an anonymous answer; all: neither', () => {
  const secret = ref('konard/secret:1');
  const pub = judge(secret, filters('public'), PUBLIC);
  assert.deepEqual([pub.kind, pub.asked], ['copy', true]);
  const priv = judge(secret, filters('public'), PRIVATE);
  assert.deepEqual([priv.kind, priv.reason], ['skip: not public', PRIVATE.reason]);
  // A registry outside the allowlist is refused before anyone is asked.
  const local = judge(ref('127.0.0.1:5000/team/app:1'), filters('public'), undefined);
  assert.equal(local.kind, 'skip: registry not allowed');
  assert.match(local.reason, /registry 127\.0\.0\.1:5000 is not in the allowlist \(docker\.io ghcr\.io/);
  assert.equal(judge(ref('127.0.0.1:5000/team/app:1'), filters('public', [], ['127.0.0.1:5000']), PUBLIC).kind, 'copy');
  assert.equal(
    judge(ref('busybox:1'), filters('public', [], ['ghcr.io']), undefined).kind,
    'skip: registry not allowed',
  );
  // all copies whatever the registry and whoever may pull it, without asking.
  for (const r of [secret, ref('127.0.0.1:5000/team/app:1'), ref('local/built:dev', [])]) {
    const d = judge(r, filters('all', [], ['ghcr.io']), undefined);
    assert.deepEqual([d.kind, d.asked], ['copy', false], r.text);
  }
});

test('public judges the name an image is copied under: a re-tagged public image has no digest under its new name', () => {
  // The host pulled busybox:1 and tagged it konard/private-copy:1: same image, but only busybox has a RepoDigest.
  const retag = ref('konard/private-copy:1', []);
  const d = judge(retag, filters('public'), undefined);
  assert.equal(d.kind, 'skip: not public');
  assert.match(d.reason, /no registry digest for docker\.io\/konard\/private-copy/);
  assert.equal(judge(retag, filters('all'), undefined).kind, 'copy');
});

test('already present skips without asking the registry, after the name and registry filters', () => {
  const d = judge(ref('busybox:1'), filters('public'), undefined, true);
  assert.deepEqual([d.kind, d.asked], ['skip: already present', false]);
  assert.equal(
    judge(ref('busybox:1'), filters('public', ['alpine']), undefined, true).kind,
    'skip: no pattern matches',
  );
  assert.equal(
    judge(ref('ghcr.io/a/b:1'), filters('public', [], ['docker.io']), undefined, true).kind,
    'skip: registry not allowed',
  );
});

test('every mode × registries × images combination on one host', () => {
  const host = {
    'busybox:1': ref('busybox:1'),
    'konard/hive-mind:1': ref('konard/hive-mind:1'),
    'konard/secret:1': ref('konard/secret:1'),
    'ghcr.io/org/tool:1': ref('ghcr.io/org/tool:1'),
    '127.0.0.1:5000/team/app:1': ref('127.0.0.1:5000/team/app:1'),
    'local/built:1': ref('local/built:1', []),
  };
  const isPublic = (r: HostReference) => (r.reference.repository === 'konard/secret' ? PRIVATE : PUBLIC);
  const run = (f: Filters) =>
    Object.values(host)
      .filter((r) => judge(r, f, isPublic(r)).kind === 'copy')
      .map((r) => r.text);
  const all = Object.keys(host);
  const cases: [string, 'public' | 'all', string[], string[] | undefined, string[]][] = [
    [
      'public, default registries, no images',
      'public',
      [],
      undefined,
      ['busybox:1', 'konard/hive-mind:1', 'ghcr.io/org/tool:1'],
    ],
    [
      'public, own registries, no images',
      'public',
      [],
      ['127.0.0.1:5000', 'docker.io'],
      ['busybox:1', 'konard/hive-mind:1', '127.0.0.1:5000/team/app:1'],
    ],
    [
      'public, default registries, images',
      'public',
      ['konard/*', 'ghcr.io/**'],
      undefined,
      ['konard/hive-mind:1', 'ghcr.io/org/tool:1'],
    ],
    [
      'public, own registries, images',
      'public',
      ['konard/*', '127.0.0.1:5000/**'],
      ['127.0.0.1:5000'],
      ['127.0.0.1:5000/team/app:1'],
    ],
    ['all, default registries, no images', 'all', [], undefined, all],
    ['all, own registries (ignored), no images', 'all', [], ['ghcr.io'], all],
    [
      'all, images',
      'all',
      ['konard/*', 'local/**'],
      undefined,
      ['konard/hive-mind:1', 'konard/secret:1', 'local/built:1'],
    ],
    ['all, own registries, images', 'all', ['127.0.0.1:5000/team/app:1'], ['docker.io'], ['127.0.0.1:5000/team/app:1']],
  ];
  for (const [name, mode, images, registries, expected] of cases) {
    assert.deepEqual(run(filters(mode, images, registries ?? DEFAULT_REGISTRIES)), expected, name);
  }
});

test('the plan asks the registry once per repository and digest, and warns about exact entries it cannot honour', async () => {
  const id = (c: string) => `sha256:${c.repeat(64)}`;
  const host = [
    { id: id('a'), repoTags: ['busybox:1', 'busybox:latest'], repoDigests: [`busybox@${D1}`], size: 1, created: 0 },
    {
      id: id('b'),
      repoTags: ['konard/secret:1', 'konard/hive-mind:evil'],
      repoDigests: [`konard/secret@${D2}`],
      size: 1,
      created: 0,
    },
    { id: id('c'), repoTags: [], repoDigests: [], size: 1, created: 0 },
  ];
  const target = [{ id: id('a'), repoTags: ['busybox:latest'], repoDigests: [], size: 1, created: 0 }];
  const asked: string[] = [];
  const images = [
    'busybox',
    'konard/hive-mind:evil',
    'konard/secret:1',
    'konard/hive-mind:2',
    `alpine@${D1}`,
    'konard/*',
  ];
  const plan = await makePlan(host, target, filters('public', images), images, async (q) => {
    asked.push(`${q.registry}/${q.repository}@${q.digests.join(',')}`);
    return q.repository === 'konard/secret' ? PRIVATE : PUBLIC;
  });
  assert.deepEqual(
    plan.entries.map((e) => [e.reference, e.decision]),
    [
      ['busybox:1', 'copy'],
      ['busybox:latest', 'skip: already present'],
      // The private image re-tagged under a public repository's name has no digest there: the box's hole, closed.
      ['konard/hive-mind:evil', 'skip: not public'],
      ['konard/secret:1', 'skip: not public'],
    ],
  );
  assert.deepEqual(asked.sort(), [`docker.io/konard/secret@${D2}`, `docker.io/library/busybox@${D1}`]);
  assert.deepEqual(plan.warnings, [
    `konard/hive-mind:evil is on the host as konard/hive-mind:evil but is not copied: skip: not public (no registry digest for docker.io/konard/hive-mind on the host: built, loaded or re-tagged locally, so nothing shows it can be pulled anonymously)`,
    `konard/secret:1 is on the host as konard/secret:1 but is not copied: skip: not public (${PRIVATE.reason})`,
    'konard/hive-mind:2 is not on the host daemon: the inner daemon will pull it when it is first used',
    `alpine@${D1} is not on the host daemon: the inner daemon will pull it when it is first used`,
  ]);
});

test('settings: flags over the box variables over the box defaults', () => {
  assert.deepEqual(resolveSettings({}, {}), {
    mode: 'public',
    registries: DEFAULT_REGISTRIES,
    images: [],
    from: 'unix:///var/run/host-docker.sock',
    origins: { mode: 'default', registries: 'default', images: 'default', from: 'default' },
  });
  const env = {
    DIND_HOST_PASSTHROUGH: 'ALL',
    DIND_HOST_PASSTHROUGH_REGISTRIES: 'index.docker.io  ghcr.io',
    DIND_HOST_PASSTHROUGH_IMAGES: ' konard/hive-mind  konard/hive-mind-dind ',
    DIND_HOST_DOCKER_SOCK: '/run/host.sock',
  };
  const s = resolveSettings({}, env);
  assert.deepEqual(
    [s.mode, s.registries, s.images, s.from],
    ['all', ['docker.io', 'ghcr.io'], ['konard/hive-mind', 'konard/hive-mind-dind'], 'unix:///run/host.sock'],
  );
  const f = resolveSettings(
    { mode: 'public', registries: 'quay.io', images: 'a b', from: 'tcp://127.0.0.1:2375' },
    env,
  );
  assert.deepEqual(
    [f.mode, f.registries, f.images, f.from, f.origins.mode],
    ['public', ['quay.io'], ['a', 'b'], 'tcp://127.0.0.1:2375', '--mode'],
  );
  for (const off of ['off', 'OFF', '0', 'false', 'no', '', ' '])
    assert.equal(parseMode(off, 'x'), 'off', JSON.stringify(off));
  assert.equal(resolveSettings({}, { DIND_HOST_PASSTHROUGH: '' }).mode, 'off');
  assert.deepEqual(resolveSettings({}, { DIND_HOST_PASSTHROUGH_REGISTRIES: '' }).registries, DEFAULT_REGISTRIES);
  assert.throws(
    () => resolveSettings({}, { DIND_HOST_PASSTHROUGH: 'yes please' }),
    /DIND_HOST_PASSTHROUGH=yes please: expected off, public or all/,
  );
  assert.throws(() => resolveSettings({ mode: 'on' }, {}), /--mode=on: expected off, public or all/);
});

test('exact entries are the ones with a tag or digest and no glob', () => {
  for (const e of ['busybox:1', 'konard/hive-mind:latest', `busybox@${D1}`, '127.0.0.1:5000/app:1'])
    assert.equal(isConcrete(e), true, e);
  for (const e of ['busybox', 'konard/hive-mind', 'konard/*:1', '127.0.0.1:5000/app', 'konard/hive-mind:v?'])
    assert.equal(isConcrete(e), false, e);
});

test('decide() refuses a name the flow rules refuse, before asking any registry, in the words the cache uses', () => {
  const flows = compileFlows([
    { images: ['docker.io/library/*'], tags: { exclude: ['*-rc*'] } },
    { images: ['docker.io/**'], deny: true },
  ]);
  const f = { ...filters('public', ['busybox', 'konard/*']), flows };
  const other = judge(ref('konard/app:1'), f, undefined);
  assert.deepEqual(
    [other.kind, other.reason, other.asked],
    [
      'skip: not approved',
      'docker.io/konard/app:1 is not an approved upstream image: flow rule 2 (docker.io/**) denies it',
      false,
    ],
  );
  assert.equal(
    judge(ref('busybox:2-rc1'), f, undefined).reason,
    decideFlow(flows, { repository: 'docker.io/library/busybox', tag: '2-rc1' }).reason,
  );
  const ok = judge(ref('busybox:1'), f, PUBLIC);
  assert.deepEqual(
    [ok.kind, ok.reason],
    [
      'copy',
      'anonymous HEAD answered 200 (image pattern busybox); docker.io/library/busybox:1 is approved by flow rule 1 (docker.io/library/*)',
    ],
  );
  // Mode all asks no registry, but the flow rules still decide.
  assert.equal(judge(ref('konard/app:1'), { ...f, mode: 'all' }, undefined).kind, 'skip: not approved');
  // No flow rules given: the flows are not consulted at all.
  assert.equal(judge(ref('konard/app:1'), filters('all'), undefined).kind, 'copy');
});
