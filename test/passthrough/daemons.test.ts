import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runPassthrough, type Daemon, type PassthroughResult } from '../../src/passthrough/run.js';
import { DEFAULT_REGISTRIES } from '../../src/passthrough/settings.js';
import { DockerEngine } from '../../src/transport/docker-engine.js';
import { Upstreams } from '../../src/upstream/upstreams.js';
import type { AuthFixture } from '../auth/fixture.js';
import type { TestDaemon } from '../helpers/dockerd.js';
import { makeImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { sluice } from '../helpers/sluice-cli.js';
import {
  alice,
  clearImages,
  dockerMay,
  loadLocal,
  pull,
  pushAs,
  sharedWorld,
  startDockerdWith,
  startHubStandIn,
  startPrivateRegistry,
  tagsOf,
} from './fixture.js';

// One host daemon (pulling docker.io through a local mirror, so its RepoDigests are real docker.io ones)
// and one inner daemon, shared by every case here; each case starts from an empty inner daemon.
interface World {
  hub: AuthFixture;
  pub: TestRegistry;
  priv: AuthFixture;
  host: TestDaemon;
  inner: TestDaemon;
  /** RepoTag → image ID on the host. */
  hostTags: Record<string, string>;
}

async function setUp(): Promise<World> {
  const hub = await startHubStandIn(['konard/secret']);
  const pub = await startRegistry();
  const priv = await startPrivateRegistry();
  const img = (label: string) =>
    makeImage({ format: 'docker', label, layers: [{ 'base.txt': 'shared base\n' }, { 'app.txt': `${label}\n` }] });
  const hubAuth = alice('docker.io');
  await pushAs(hub.reg.url, 'library/busybox', '1', await img('busybox'));
  await pushAs(hub.reg.url, 'konard/hive-mind', 'latest', await img('hive-mind'));
  await pushAs(hub.reg.url, 'konard/hive-mind-dind', 'latest', await img('hive-mind-dind'));
  await pushAs(hub.reg.url, 'konard/other', '1', await img('other'));
  await pushAs(hub.reg.url, 'konard/secret', '1', await img('secret'), hubAuth.header);
  await pushAs(pub.url, 'team/app', '1', await img('public-registry'));
  await pushAs(priv.reg.url, 'team/private', '1', await img('private-registry'), alice(priv.reg.host).header);

  const host = await startDockerdWith(['--registry-mirror', hub.reg.url]);
  const inner = await startDockerdWith([]);
  await pull(host, 'busybox:1');
  await pull(host, 'konard/hive-mind:latest');
  await pull(host, 'konard/hive-mind-dind:latest');
  await pull(host, 'konard/other:1');
  // Docker Hub's private repositories have docker.io RepoDigests too: that alone proves nothing.
  await pull(host, 'konard/secret:1', hubAuth.auth);
  await pull(host, `${pub.host}/team/app:1`);
  await pull(host, `${priv.reg.host}/team/private:1`, alice(priv.reg.host).auth);
  // The box's hole: the private image under a public repository's name carries its docker.io RepoDigest along.
  await host.docker(['tag', 'konard/secret:1', 'konard/hive-mind:evil']);
  // A public image under a name nobody can pull.
  await host.docker(['tag', 'busybox:1', 'konard/busybox-copy:1']);
  await loadLocal(
    host,
    await makeImage({
      format: 'docker',
      label: 'local',
      layers: [{ 'base.txt': 'shared base\n' }, { 'local.txt': 'built here\n' }],
    }),
    'local/built:1',
  );
  const world: World = { hub, pub, priv, host, inner, hostTags: await tagsOf(host) };
  return world;
}

const ready = sharedWorld(setUp, async (w) => {
  await Promise.all([w.host.stop(), w.inner.stop()]);
  await Promise.all([w.hub.close(), w.pub.close(), w.priv.close()]);
});

/** `sluice passthrough --json` from the host into the (emptied) inner daemon. */
async function passthrough(
  w: World,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  opts: { keep?: boolean } = {},
): Promise<PassthroughResult & { stderr: string; code: number }> {
  if (!opts.keep) await clearImages(w.inner);
  const r = await sluice(
    ['passthrough', '--json', '--to', w.inner.host, '--upstream', `docker.io=${w.hub.reg.url}`, ...args],
    { DOCKER_HOST: '', ...env },
  );
  assert.ok(r.stdout.trim().startsWith('{'), `sluice passthrough printed no JSON (exit ${r.code}): ${r.stderr}`);
  return { ...(JSON.parse(r.stdout) as PassthroughResult), stderr: r.stderr, code: r.code };
}

function decisions(r: PassthroughResult): Record<string, string> {
  return Object.fromEntries(r.entries.map((e) => [e.reference, e.decision]));
}

/** The inner daemon holds exactly these host tags, each as the host's image. */
async function assertInner(w: World, expected: string[]): Promise<void> {
  const inner = await tagsOf(w.inner);
  assert.deepEqual(Object.keys(inner), [...expected].sort());
  for (const t of expected) assert.equal(inner[t], w.hostTags[t], `${t} is the host's image`);
}

test('the host has real docker.io RepoDigests through the mirror, also for the private image', {
  timeout: 120_000,
}, async (t) => {
  const w = ready(t);
  if (!w) return;
  const r = await dockerMay(w.host, ['image', 'inspect', 'konard/secret:1', '--format', '{{json .RepoDigests}}']);
  assert.match(r.stdout, /^\["konard\/secret@sha256:[0-9a-f]{64}"\]/);
  // The private repository refuses anonymous pulls; the public one answers them.
  assert.equal((await fetch(`${w.hub.reg.url}/v2/konard/secret/manifests/1`)).status, 401);
  assert.deepEqual(Object.keys(w.hostTags).length, 10);
});

test('public with the default registries copies exactly the anonymously pullable docker.io images', {
  timeout: 120_000,
}, async (t) => {
  const w = ready(t);
  if (!w) return;
  const r = await passthrough(w, ['--from', w.host.host, '--mode', 'public']);
  assert.equal(r.code, 0, r.stderr);
  const p = w.pub.host;
  const q = w.priv.reg.host;
  assert.deepEqual(decisions(r), {
    'busybox:1': 'copy',
    'konard/busybox-copy:1': 'skip: not public',
    'konard/hive-mind-dind:latest': 'copy',
    'konard/hive-mind:evil': 'skip: not public',
    'konard/hive-mind:latest': 'copy',
    'konard/other:1': 'copy',
    'konard/secret:1': 'skip: not public',
    'local/built:1': 'skip: not public',
    [`${p}/team/app:1`]: 'skip: registry not allowed',
    [`${q}/team/private:1`]: 'skip: registry not allowed',
  });
  const reason = (ref: string) => r.entries.find((e) => e.reference === ref)!.reason;
  assert.match(reason('konard/secret:1'), /anonymous (HEAD|token request) answered 401 for docker\.io\/konard\/secret/);
  assert.match(reason('konard/hive-mind:evil'), /no registry digest for docker\.io\/konard\/hive-mind/);
  assert.match(reason('busybox:1'), /anonymous HEAD of docker\.io\/library\/busybox@sha256:[0-9a-f]{64} answered 200/);
  assert.equal(r.copied, 4);
  assert.equal(r.failed, 0);
  assert.deepEqual(
    r.entries.filter((e) => e.decision === 'copy').map((e) => e.result),
    ['copied', 'copied', 'copied', 'copied'],
  );
  await assertInner(w, ['busybox:1', 'konard/hive-mind-dind:latest', 'konard/hive-mind:latest', 'konard/other:1']);
});

test("the box issue's example, from its own variables: public + konard/hive-mind konard/hive-mind-dind → exactly those two", {
  timeout: 120_000,
}, async (t) => {
  const w = ready(t);
  if (!w) return;
  const r = await passthrough(w, [], {
    DIND_HOST_PASSTHROUGH: 'public',
    DIND_HOST_PASSTHROUGH_IMAGES: 'konard/hive-mind konard/hive-mind-dind',
    DIND_HOST_DOCKER_SOCK: w.host.socket,
    DIND_HOST_PASSTHROUGH_REGISTRIES: DEFAULT_REGISTRIES.join(' '),
  });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    r.entries.filter((e) => e.decision !== 'skip: no pattern matches').map((e) => [e.reference, e.decision]),
    [
      ['konard/hive-mind-dind:latest', 'copy'],
      // The name matches, but the image behind it is the private one.
      ['konard/hive-mind:evil', 'skip: not public'],
      ['konard/hive-mind:latest', 'copy'],
    ],
  );
  await assertInner(w, ['konard/hive-mind-dind:latest', 'konard/hive-mind:latest']);
});

test('public with an own registry allowlist: the anonymous registry passes, the login-only one is not public', {
  timeout: 120_000,
}, async (t) => {
  const w = ready(t);
  if (!w) return;
  const p = w.pub.host;
  const q = w.priv.reg.host;
  const r = await passthrough(w, ['--from', w.host.host, '--registries', `${p} ${q}`]);
  assert.equal(r.code, 0, r.stderr);
  const d = decisions(r);
  assert.equal(d[`${p}/team/app:1`], 'copy');
  assert.equal(d[`${q}/team/private:1`], 'skip: not public');
  assert.match(r.entries.find((e) => e.reference === `${q}/team/private:1`)!.reason, /answered 401/);
  assert.equal(d['busybox:1'], 'skip: registry not allowed', 'docker.io is not in this allowlist');
  await assertInner(w, [`${p}/team/app:1`]);

  // With images as well: the name filter and the mode filter must both pass.
  const r2 = await passthrough(w, [
    '--from',
    w.host.host,
    '--registries',
    `docker.io ${p} ${q}`,
    '--images',
    `${q}/** konard/*:latest`,
  ]);
  assert.deepEqual(
    r2.entries.filter((e) => e.decision !== 'skip: no pattern matches').map((e) => [e.reference, e.decision]),
    [
      [`${q}/team/private:1`, 'skip: not public'],
      ['konard/hive-mind-dind:latest', 'copy'],
      ['konard/hive-mind:latest', 'copy'],
    ],
  );
  await assertInner(w, ['konard/hive-mind-dind:latest', 'konard/hive-mind:latest']);
});

test('all copies every tag (registries ignored) in one stream; with images only those', {
  timeout: 180_000,
}, async (t) => {
  const w = ready(t);
  if (!w) return;
  const r = await passthrough(w, ['--from', w.host.host, '--mode', 'all', '--registries', 'ghcr.io']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.copied, 10);
  assert.equal(r.registryRequests, 0, 'all asks no registry');
  assert.ok(!r.warnings.some((x) => /one stream failed/.test(x)), r.warnings.join('\n'));
  await assertInner(w, Object.keys(w.hostTags));

  // Globs with and without docker.io/ and tags; * stays in its segment.
  const globs = await passthrough(w, [
    '--from',
    w.host.host,
    '--mode',
    'all',
    '--images',
    `docker.io/konard/hive-mind*:latest local/* ${w.priv.reg.host}/**`,
  ]);
  assert.deepEqual(
    globs.entries.filter((e) => e.decision === 'copy').map((e) => e.reference),
    [`${w.priv.reg.host}/team/private:1`, 'konard/hive-mind-dind:latest', 'konard/hive-mind:latest', 'local/built:1'],
  );
  await assertInner(w, [
    'konard/hive-mind-dind:latest',
    'konard/hive-mind:latest',
    'local/built:1',
    `${w.priv.reg.host}/team/private:1`,
  ]);
  const one = await passthrough(w, ['--from', w.host.host, '--mode', 'all', '--images', '*']);
  assert.deepEqual(
    one.entries.filter((e) => e.decision === 'copy').map((e) => e.reference),
    ['busybox:1'],
  );
});

test('off (also 0, false, no, empty) copies nothing and does not touch the host', { timeout: 120_000 }, async (t) => {
  const w = ready(t);
  if (!w) return;
  for (const [args, env] of [
    [['--mode', 'off'], {}],
    [[], { DIND_HOST_PASSTHROUGH: '0' }],
    [[], { DIND_HOST_PASSTHROUGH: 'false' }],
    [[], { DIND_HOST_PASSTHROUGH: 'no' }],
    [[], { DIND_HOST_PASSTHROUGH: '' }],
  ] as [string[], NodeJS.ProcessEnv][]) {
    const r = await passthrough(w, ['--from', w.host.host, ...args], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([r.mode, r.entries.length, r.copied], ['off', 0, 0], JSON.stringify(env));
  }
  await assertInner(w, []);
});

test('dry-run prints the plan as a table and copies nothing; --json gives the same plan', {
  timeout: 120_000,
}, async (t) => {
  const w = ready(t);
  if (!w) return;
  await clearImages(w.inner);
  const r = await sluice(
    [
      'passthrough',
      '--dry-run',
      '--from',
      w.host.host,
      '--to',
      w.inner.host,
      '--upstream',
      `docker.io=${w.hub.reg.url}`,
    ],
    { DOCKER_HOST: '' },
  );
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^REFERENCE\s+DECISION\s+REASON$/);
  const row = (ref: string) => lines.find((l) => l.startsWith(`${ref} `)) ?? '';
  assert.match(
    row('busybox:1'),
    /^busybox:1\s+copy\s+anonymous HEAD of docker\.io\/library\/busybox@sha256:\w+ answered 200$/,
  );
  assert.match(
    row('konard/secret:1'),
    /^konard\/secret:1\s+skip: not public\s+anonymous (HEAD|token request) answered 401/,
  );
  assert.match(
    row(`${w.pub.host}/team/app:1`),
    /skip: registry not allowed\s+registry 127\.0\.0\.1:\d+ is not in the allowlist/,
  );
  assert.match(row('local/built:1'), /skip: not public\s+no registry digest/);
  assert.equal(lines.at(-1), `would copy 4 of 10 host tags from ${w.host.host} to ${w.inner.host} (mode public)`);
  // The dry run added nothing.
  assert.deepEqual(await tagsOf(w.inner), {});
  const j = await passthrough(w, ['--from', w.host.host, '--dry-run', '--images', 'konard/hive-mind']);
  assert.equal(j.dryRun, true);
  assert.deepEqual(
    j.entries.filter((e) => e.decision === 'copy').map((e) => [e.reference, e.result]),
    [['konard/hive-mind:latest', undefined]],
  );
  await assertInner(w, []);
});

test('a second run skips what the target already has, by image ID, without asking any registry', {
  timeout: 120_000,
}, async (t) => {
  const w = ready(t);
  if (!w) return;
  const first = await passthrough(w, ['--from', w.host.host]);
  assert.equal(first.copied, 4);
  const started = Date.now();
  const second = await passthrough(w, ['--from', w.host.host], {}, { keep: true });
  const seconds = (Date.now() - started) / 1000;
  assert.equal(second.copied, 0);
  assert.equal(second.bytes, 0);
  // Only the refused private image is asked about again: what is present is not.
  assert.equal(second.registryRequests, 1);
  assert.deepEqual(
    second.entries.filter((e) => e.decision === 'skip: already present').map((e) => e.reference),
    ['busybox:1', 'konard/hive-mind-dind:latest', 'konard/hive-mind:latest', 'konard/other:1'],
  );
  assert.ok(seconds < 10, `the second run took ${seconds} s`);
  // The same tag naming another image in the target is not "present": it is copied over.
  await w.inner.docker(['tag', 'konard/other:1', 'busybox:1']);
  const third = await passthrough(w, ['--from', w.host.host], {}, { keep: true });
  assert.deepEqual(
    third.entries.filter((e) => e.decision === 'copy').map((e) => [e.reference, e.result]),
    [['busybox:1', 'copied']],
  );
  await assertInner(w, ['busybox:1', 'konard/hive-mind-dind:latest', 'konard/hive-mind:latest', 'konard/other:1']);
});

test('warnings: an exact entry not on the host, one refused, and an image list without a host socket', {
  timeout: 120_000,
}, async (t) => {
  const w = ready(t);
  if (!w) return;
  const r = await passthrough(w, [
    '--from',
    w.host.host,
    '--images',
    'konard/hive-mind:2 konard/secret:1 konard/hive-mind',
  ]);
  assert.equal(r.code, 0);
  assert.match(r.stderr, /^warning: konard\/hive-mind:2 is not on the host daemon/m);
  assert.match(
    r.stderr,
    /^warning: konard\/secret:1 is on the host as konard\/secret:1 but is not copied: skip: not public/m,
  );
  assert.ok(!/warning: konard\/hive-mind /.test(r.stderr), 'a bare repository is not an exact entry');
  await assertInner(w, ['konard/hive-mind:latest']);

  const gone = '/tmp/sd-no-such-host/docker.sock';
  const m = await passthrough(w, [], { DIND_HOST_DOCKER_SOCK: gone, DIND_HOST_PASSTHROUGH_IMAGES: 'konard/hive-mind' });
  assert.equal(m.code, 0);
  assert.match(
    m.stderr,
    new RegExp(
      `warning: an image list is given but there is no host Docker socket at ${gone}.*-v /var/run/docker.sock:${gone}:ro`,
    ),
  );
  // Without an image list, a missing socket is the normal case of a plain dind container: silent.
  const quiet = await passthrough(w, [], { DIND_HOST_DOCKER_SOCK: gone });
  assert.equal(quiet.stderr, '');
  assert.equal(quiet.idle, `no host Docker socket at ${gone}`);
});

test('one image failing does not keep the others out', { timeout: 180_000 }, async (t) => {
  const w = ready(t);
  if (!w) return;
  await clearImages(w.inner);
  await loadLocal(
    w.host,
    await makeImage({ format: 'docker', label: 'doomed', layers: [{ 'doomed.txt': 'removed meanwhile\n' }] }),
    'local/doomed:1',
  );
  const hostEngine = new DockerEngine(w.host.host);
  // The image disappears between the plan and the export, as when someone removes it on the host meanwhile.
  const from: Daemon = {
    host: hostEngine.host,
    listImages: async () => {
      const list = await hostEngine.listImages();
      await w.host.docker(['rmi', 'local/doomed:1']);
      return list;
    },
    exportImages: (ids) => hostEngine.exportImages(ids),
    loadImages: (s) => hostEngine.loadImages(s),
    tagImage: (id, name) => hostEngine.tagImage(id, name),
    removeImage: (name, o) => hostEngine.removeImage(name, o),
    close: () => hostEngine.close(),
  };
  const upstreams = new Upstreams({});
  const r = await runPassthrough({
    mode: 'all',
    registries: [],
    images: ['local/**', 'konard/other'],
    from,
    to: new DockerEngine(w.inner.host),
    upstreams,
  });
  await upstreams.close();
  assert.deepEqual(
    r.entries.filter((e) => e.decision === 'copy').map((e) => [e.reference, e.result?.replace(/:.*/s, '')]),
    [
      ['konard/other:1', 'copied'],
      ['local/built:1', 'copied'],
      ['local/doomed:1', 'failed'],
    ],
  );
  assert.equal(r.failed, 1);
  assert.ok(r.warnings.some((x) => /in one stream failed/.test(x)));
  await assertInner(w, ['konard/other:1', 'local/built:1']);
});

test('flows from -c apply on top of the image list: a name the list allows but a flow rule refuses is not seeded, and says which rule', {
  timeout: 120_000,
}, async (t) => {
  const w = ready(t);
  if (!w) return;
  const dir = await mkdtemp(join(tmpdir(), 'sluice-pt-flows-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'config.yml');
  await writeFile(
    cfg,
    'flows:\n  - images: ["docker.io/konard/hive-mind"]\n  - name: no other hub images\n    images: ["docker.io/**"]\n    deny: true\n',
  );
  const r = await passthrough(w, ['-c', cfg], {
    DIND_HOST_PASSTHROUGH: 'public',
    DIND_HOST_PASSTHROUGH_IMAGES: 'konard/hive-mind konard/hive-mind-dind',
    DIND_HOST_DOCKER_SOCK: w.host.socket,
  });
  assert.equal(r.code, 0, r.stderr);
  const seen = r.entries
    .filter((e) => e.decision !== 'skip: no pattern matches')
    .map((e) => [e.reference, e.decision, e.reason]);
  assert.deepEqual(
    seen.map(([ref, decision]) => [ref, decision]),
    [
      ['konard/hive-mind-dind:latest', 'skip: not approved'],
      // Approved by name, then judged by the mode as before: the private image behind it is not public.
      ['konard/hive-mind:evil', 'skip: not public'],
      ['konard/hive-mind:latest', 'copy'],
    ],
  );
  // The cache's words for the same image (`sluice policy explain --action fetch` says the same).
  assert.equal(
    seen[0]![2],
    'docker.io/konard/hive-mind-dind:latest is not an approved upstream image: flow rule 2 "no other hub images" (docker.io/**) denies it',
  );
  assert.match(
    seen[2]![2]!,
    /answered 200 \(image pattern konard\/hive-mind\); docker\.io\/konard\/hive-mind:latest is approved by flow rule 1 \(docker\.io\/konard\/hive-mind\)$/,
  );
  await assertInner(w, ['konard/hive-mind:latest']);
});
