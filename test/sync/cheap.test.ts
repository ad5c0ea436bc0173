import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry.js';
import { startThrottleProxy, type SeenRequest } from '../helpers/throttle-proxy.js';
import { makeImage, pushImage, type TestImage } from '../helpers/images.js';
import { assertIntact } from '../helpers/oci-http.js';
import { sluice } from '../helpers/sluice-cli.js';

const count = (seen: SeenRequest[], method: string, path: RegExp) =>
  seen.filter((s) => s.method === method && path.test(s.path)).length;

test('sluice sync --src yaml: one ping per registry, shared layers mounted where the run put them, listed tags HEADed without a tag list, in parallel', async () => {
  const up = await startRegistry();
  const dst = await startRegistry();
  const upstream = await startThrottleProxy(up.url);
  const dest = await startThrottleProxy(dst.url);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-sync-cheap-'));
  try {
    const base = { 'base.txt': 'a base layer every image shares\n'.repeat(1000) };
    const images = new Map<string, TestImage>();
    for (const repo of ['one', 'two', 'three']) {
      for (const tag of ['v1', 'v2']) {
        const img = await makeImage({ layers: [base, { 'own.txt': `${repo}:${tag}` }], label: `${repo}-${tag}` });
        await pushImage(up.url, `team/${repo}`, tag, img);
        images.set(`${repo}:${tag}`, img);
      }
    }
    const shared = images.get('one:v1')!.layers[0]!.descriptor.digest;
    const yml = join(dir, 'sync.yml');
    await writeFile(
      yml,
      [
        `${upstream.host}:`,
        '  images:',
        ...['one', 'two', 'three'].map((r) => `    team/${r}: [v1, v2]`),
        '  tls-verify: false',
        '',
      ].join('\n'),
    );
    const args = [
      'sync',
      '--src',
      'yaml',
      yml,
      '--dest',
      `docker://${dest.host}/mirror`,
      '--dest-tls-verify=false',
      '--state',
      join(dir, 'state'),
      '--json',
    ];

    const first = await sluice(args);
    assert.equal(first.code, 0, first.stderr);
    for (const [key, img] of images) {
      const [repo, tag] = key.split(':');
      await assertIntact(dst.url, `mirror/${repo}`, tag!, img);
    }
    const upLog = upstream.seen.map((s) => `${s.method} ${s.path}`).join('\n');
    const destLog = dest.seen.map((s) => `${s.method} ${s.path}`).join('\n');
    assert.equal(count(upstream.seen, 'GET', /^\/v2\/$/), 1, `one ping upstream for the whole run:\n${upLog}`);
    assert.equal(count(dest.seen, 'GET', /^\/v2\/$/), 1, `one ping at the destination for the whole run:\n${destLog}`);
    assert.equal(
      count(upstream.seen, 'GET', /\/tags\/list/),
      0,
      `the YAML lists the tags; no tag list needed:\n${upLog}`,
    );
    // The shared layer travels once; the other repositories mount it from where the run put it.
    assert.equal(count(upstream.seen, 'GET', new RegExp(`/blobs/${shared}$`)), 1, upLog);
    assert.equal(count(dest.seen, 'PUT', new RegExp(`digest=${encodeURIComponent(shared)}`)), 1, destLog);
    // Jobs run side by side, yet the copies take turns with the layer: one mount into each other repository
    // (its second tag then finds it there), never two at once (Distribution's link file is rewritten in place).
    const mountPath = new RegExp(`mount=${encodeURIComponent(shared)}`);
    const mounts = dest.seen.filter((s) => s.method === 'POST' && mountPath.test(s.path) && s.status === 201);
    assert.equal(mounts.length, 2, destLog);
    assert.equal(dest.maxInFlight('POST', mountPath), 1, destLog);
    // Whichever job put it first (they run side by side), the other two repositories mounted it.
    const put = dest.seen
      .find((s) => s.method === 'PUT' && s.path.includes(`digest=${encodeURIComponent(shared)}`))!
      .path.replace(/\/blobs\/uploads.*$/, '');
    const others = ['/v2/mirror/one', '/v2/mirror/three', '/v2/mirror/two'].filter((r) => r !== put);
    assert.deepEqual(
      [...new Set(mounts.map((m) => m.path.replace(/\/blobs\/uploads.*$/, '')))].sort(),
      others,
      destLog,
    );

    // Nothing changed: one ping and one HEAD per tag, every job's HEADs out together (jobs run side by side).
    upstream.reset();
    dest.seen.length = 0;
    upstream.delay = { path: /\/manifests\//, method: 'HEAD', ms: 300 };
    const again = await sluice(args);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(
      (JSON.parse(again.stdout) as { copied: string[] }[]).flatMap((r) => r.copied),
      [],
    );
    const kinds = upstream.seen.map((s) => `${s.method} ${s.path.replace(/manifests\/.*$/, 'manifests/TAG')}`).sort();
    assert.deepEqual(kinds, [
      'GET /v2/',
      ...['one', 'one', 'three', 'three', 'two', 'two'].map((r) => `HEAD /v2/team/${r}/manifests/TAG`),
    ]);
    assert.equal(upstream.maxInFlight('HEAD'), 6, 'the HEADs of all three jobs go out together');
    assert.deepEqual(dest.seen, [], 'the destination is not asked anything when nothing moved');

    // Text output: each job's lines together and in job order, however the jobs finish; one job at a time on request.
    upstream.reset();
    upstream.delay = { path: /\/team\/one\/manifests\//, method: 'HEAD', ms: 600 };
    const text = await sluice(args.filter((a) => a !== '--json'));
    assert.equal(text.code, 0, text.stderr);
    const heads = text.stdout.split('\n').filter((l) => l.startsWith('job ') || l.startsWith('  unchanged'));
    assert.deepEqual(
      heads.map((l) => (l.startsWith('job ') ? l : l.replace(/^.*team\/(\w+):.*$/, '$1'))),
      [
        'job 1-' + upstream.host.replace(/[^a-z0-9._-]+/g, '-') + '-team-one:',
        'one',
        'one',
        `job 2-${upstream.host.replace(/[^a-z0-9._-]+/g, '-')}-team-two:`,
        'two',
        'two',
        `job 3-${upstream.host.replace(/[^a-z0-9._-]+/g, '-')}-team-three:`,
        'three',
        'three',
      ],
      text.stdout,
    );
    upstream.reset();
    upstream.delay = { path: /\/manifests\//, method: 'HEAD', ms: 300 };
    const serial = await sluice([...args, '--parallel-jobs', '1']);
    assert.equal(serial.code, 0, serial.stderr);
    assert.equal(upstream.maxInFlight('HEAD'), 2, 'one job at a time: only its HEADs go out together');
  } finally {
    await upstream.close();
    await dest.close();
    await up.close();
    await dst.close();
    await rm(dir, { recursive: true, force: true });
  }
});

/** A config with one job, `team`, mirroring tag v1 of `up.test/team/<repo>` for each repo into `dir/data`. */
async function teamJob(dir: string, upstreamUrl: string, repos: string[]): Promise<string> {
  const config = join(dir, 'sluice.yml');
  await writeFile(
    config,
    [
      `storage: {filesystem: {rootdirectory: ${JSON.stringify(join(dir, 'data'))}}}`,
      `upstreams: {up.test: {url: "${upstreamUrl}"}}`,
      'flows: [{images: ["up.test/team/*"]}]',
      'mirrors:',
      '  - name: team',
      `    images: [${repos.map((r) => `up.test/team/${r}`).join(', ')}]`,
      '    tags: {include: [v1]}',
      '',
    ].join('\n'),
  );
  return config;
}

test('a mirror job over several repositories sends their HEADs together, then reports them in order', async () => {
  const up = await startRegistry();
  const upstream = await startThrottleProxy(up.url);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-sync-repos-'));
  try {
    for (const repo of ['one', 'two', 'three', 'four'])
      await pushImage(up.url, `team/${repo}`, 'v1', await makeImage({ layers: [{ 'f.txt': repo }], label: repo }));
    const config = await teamJob(dir, upstream.url, ['one', 'two', 'three', 'four']);
    const first = await sluice(['sync', '-c', config, '--json']);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual((JSON.parse(first.stdout) as { copied: string[] }[])[0]!.copied, [
      'up.test/team/four:v1',
      'up.test/team/one:v1',
      'up.test/team/three:v1',
      'up.test/team/two:v1',
    ]);
    upstream.reset();
    // The answers come back in any order: the plan still lists the repositories in the job's order.
    upstream.delay = { path: /\/manifests\//, method: 'HEAD', ms: 300 };
    const again = await sluice(['sync', '-c', config, '--dry-run']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(
      upstream.maxInFlight('HEAD'),
      4,
      `the four repositories' HEADs go out together:\n${upstream.seen.map((x) => `${x.method} ${x.path}`).join('\n')}`,
    );
    const order = again.stdout
      .split('\n')
      .filter((l) => l.startsWith('  unchanged '))
      .map((l) => l.replace(/^.*team\/(\w+):.*$/, '$1'));
    assert.deepEqual(order, ['one', 'two', 'three', 'four'], again.stdout);
  } finally {
    await upstream.close();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a mirror job looks ahead a bounded number of repositories, so a long run copies what it HEADed shortly before', async () => {
  const up = await startRegistry();
  const upstream = await startThrottleProxy(up.url);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-sync-window-'));
  try {
    const repos = Array.from({ length: 20 }, (_, i) => `r${String(i).padStart(2, '0')}`);
    const img = await makeImage({ layers: [{ 'f.txt': 'window' }], label: 'window' });
    for (const r of repos) await pushImage(up.url, `team/${r}`, 'v1', img);
    const config = await teamJob(dir, upstream.url, repos);
    // The first repository answers slowly: by the time it is copied, only the window ahead of it was HEADed.
    upstream.delay = { path: /\/team\/r00\/manifests\/v1$/, method: 'HEAD', ms: 800 };
    const run = await sluice(['sync', '-c', config, '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as { copied: string[] }[])[0]!.copied.length, 20);
    const firstGet = upstream.seen.findIndex((x) => x.method === 'GET' && /\/manifests\/sha256/.test(x.path));
    const headsBefore = upstream.seen.slice(0, firstGet).filter((x) => x.method === 'HEAD').length;
    assert.equal(headsBefore, 16, upstream.seen.map((x) => `${x.method} ${x.path}`).join('\n'));
  } finally {
    await upstream.close();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  }
});
