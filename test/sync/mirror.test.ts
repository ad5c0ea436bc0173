import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { makeImage, makeMultiArch, pushImage, type TestImage } from '../helpers/images.js';
import { assertIntact, makeArtifact } from '../helpers/oci-http.js';
import { buildMirrorJobs } from '../../src/registry/sync-setup.js';
import type { MirrorJob, PlanStep } from '../../src/sync/job.js';
import { digestTag } from '../../src/oci/digest.js';

const quiet = { info: () => undefined, warn: () => undefined };

/** A registry whose docker.io upstream is `proxy` (in front of `up`), with the given flows and one mirror job. */
async function setup(
  job: Record<string, unknown>,
  flows: unknown[] = [{ images: ['docker.io/**'] }],
): Promise<{
  up: TestRegistry;
  proxy: FaultProxy;
  reg: TestRegistry;
  job: () => MirrorJob;
  close: () => Promise<void>;
}> {
  const up = await startRegistry();
  const proxy = await startFaultProxy(up.url);
  const reg = await startRegistry({
    upstreams: { 'docker.io': { url: proxy.url } },
    flows,
    mirrors: [{ name: 'test', ...job }],
  });
  return {
    up,
    proxy,
    reg,
    job: () => buildMirrorJobs(reg.ctx, reg.ctx.config, quiet)[0]!,
    close: async () => {
      await reg.close();
      await proxy.close();
      await up.close();
    },
  };
}

/** A tag as stored (not through HTTP, which would let the pull-through cache fetch it). */
function tagOf(reg: TestRegistry, repo: string, tag: string): Promise<string | null> {
  return reg.ctx.repo(repo as never).resolveTag(tag);
}

async function images(n: number, label: string): Promise<TestImage[]> {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await makeImage({ label: `${label}-${i}` }));
  return out;
}

test('a mirror job copies the selected tags with identical digests; a run where nothing moved sends only HEADs and a tag list', async () => {
  const s = await setup({ images: ['docker.io/konard/hive-mind'], tags: { exclude: ['*-rc*'] } });
  try {
    const [a, b, c] = await images(3, 'hive');
    await pushImage(s.up.url, 'konard/hive-mind', '1.0', a!);
    await pushImage(s.up.url, 'konard/hive-mind', '1.1', b!);
    await pushImage(s.up.url, 'konard/hive-mind', '2.0-rc1', c!);
    const first = await s.job().run();
    assert.equal(first.ok, true, JSON.stringify(first.errors));
    assert.deepEqual(first.copied.sort(), ['docker.io/konard/hive-mind:1.0', 'docker.io/konard/hive-mind:1.1']);
    await assertIntact(s.reg.url, 'docker.io/konard/hive-mind', '1.0', a!);
    await assertIntact(s.reg.url, 'docker.io/konard/hive-mind', '1.1', b!);
    // Checked in storage: a GET would go through the pull-through cache, which fetches on demand.
    assert.equal(await tagOf(s.reg, 'docker.io/konard/hive-mind', '2.0-rc1'), null);
    // Nothing moved: only the tag list and one HEAD per tag reach upstream.
    s.proxy.seen.length = 0;
    const second = await s.job().run();
    assert.equal(second.unchanged, 2);
    assert.deepEqual(second.copied, []);
    const methods = s.proxy.seen.map((x) =>
      x.replace(/^(\w+) \/v2\/konard\/hive-mind\/(manifests|tags)\/.*$/, '$1 $2'),
    );
    assert.deepEqual(
      methods.filter((m) => m !== 'GET /v2/'),
      ['GET tags', 'HEAD manifests', 'HEAD manifests'],
      s.proxy.seen.join('\n'),
    );
  } finally {
    await s.close();
  }
});

test('a moved tag is followed on the next run, the previous target kept under a backup tag that prune keeps', async () => {
  const s = await setup({ images: ['docker.io/library/app'], backup: '{tag}-before-{date}', prune: true });
  try {
    const [v1, v2] = await images(2, 'moved');
    await pushImage(s.up.url, 'library/app', 'latest', v1!);
    await s.job().run();
    await pushImage(s.up.url, 'library/app', 'latest', v2!);
    const run = await s.job().run();
    assert.deepEqual(run.moved, ['docker.io/library/app:latest']);
    await assertIntact(s.reg.url, 'docker.io/library/app', 'latest', v2!);
    const tags = (await (await fetch(`${s.reg.url}/v2/docker.io/library/app/tags/list`)).json()) as { tags: string[] };
    const backup = tags.tags.find((t) => t.startsWith('latest-before-'));
    assert.ok(backup, JSON.stringify(tags));
    await assertIntact(s.reg.url, 'docker.io/library/app', backup, v1!);
    // The backup is not upstream, so only the job's own template keeps prune off it.
    const again = await s.job().run();
    assert.deepEqual(again.pruned, []);
    await assertIntact(s.reg.url, 'docker.io/library/app', backup, v1!);
  } finally {
    await s.close();
  }
});

test('selection: latest N by semver order, semver ranges, include/exclude regexes', async () => {
  const s = await setup({ images: ['docker.io/library/app'], tags: { semver: '>=1.0.0', latest: 2 } });
  try {
    const img = await makeImage({ label: 'sel' });
    for (const t of ['0.9.0', '1.0.0', '1.2.0', '1.10.0', 'latest', '2.0.0-rc1'])
      await pushImage(s.up.url, 'library/app', t, img);
    const plan: PlanStep[] = [];
    const run = await s.job().run({ dryRun: true, onStep: (p) => plan.push(p) });
    assert.deepEqual(run.copied.sort(), ['docker.io/library/app:1.10.0', 'docker.io/library/app:1.2.0']);
    // A dry run writes nothing.
    assert.equal(await tagOf(s.reg, 'docker.io/library/app', '1.10.0'), null);
    assert.ok(plan.every((p) => p.action === 'copy' && p.reason === 'new'));
  } finally {
    await s.close();
  }
  const r = await setup({
    images: ['docker.io/library/app'],
    tags: { include: ['/^\\d+\\.\\d+$/'], exclude: ['1.1'] },
  });
  try {
    const img = await makeImage({ label: 'sel2' });
    for (const t of ['1.0', '1.1', '1.2', '1.2.3', 'edge']) await pushImage(r.up.url, 'library/app', t, img);
    const run = await r.job().run({ dryRun: true });
    assert.deepEqual(run.copied.sort(), ['docker.io/library/app:1.0', 'docker.io/library/app:1.2']);
  } finally {
    await r.close();
  }
});

test('prune removes tags that left the selection or vanished upstream, dry-run first, never more than maxprune', async () => {
  const s = await setup({ images: ['docker.io/library/app'], tags: { include: ['keep-*'] }, prune: true, maxprune: 1 });
  try {
    const img = await makeImage({ label: 'prune' });
    await pushImage(s.up.url, 'library/app', 'keep-1', img);
    await s.job().run();
    // Tags at the destination that the job does not select (written there by an earlier selection).
    const repo = s.reg.ctx.repo('docker.io/library/app' as never);
    await repo.tag('old-1', img.digest);
    await repo.tag('old-2', img.digest);
    const plan: PlanStep[] = [];
    const dry = await s.job().run({ dryRun: true, onStep: (p) => plan.push(p) });
    assert.deepEqual(dry.pruned, ['docker.io/library/app:old-1']);
    assert.ok(plan.some((p) => p.action === 'prune' && p.tag === 'old-2' && /maxprune 1 is reached/.test(p.reason)));
    assert.deepEqual((await repo.tags()).sort(), ['keep-1', 'old-1', 'old-2']);
    await s.job().run();
    assert.deepEqual((await repo.tags()).sort(), ['keep-1', 'old-2']);
  } finally {
    await s.close();
  }
});

test('a job asking for an image the flows refuse reports the refusal with the rule; platforms and referrers come along', async () => {
  const s = await setup(
    { images: ['docker.io/library/app', 'docker.io/other/tool'], platforms: ['linux/amd64'], referrers: true },
    [{ images: ['docker.io/library/*'] }, { name: 'no-community', images: ['docker.io/**'], deny: true }],
  );
  try {
    const idx = await makeMultiArch('sync');
    await pushImage(s.up.url, 'library/app', '1', idx);
    const sig = makeArtifact({ artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', payload: '{}' });
    await pushImage(s.up.url, 'library/app', `${digestTag(idx.digest)}.sig`, sig);
    await pushImage(s.up.url, 'other/tool', '1', await makeImage({ label: 'refused' }));
    const run = await s.job().run();
    assert.equal(run.refused.length, 1);
    assert.match(run.refused[0]!.reason, /flow rule 2 "no-community" \(docker\.io\/\*\*\) denies it/);
    assert.deepEqual(run.copied, ['docker.io/library/app:1']);
    // The index is kept whole (same digest); only amd64 came in; the .sig tag came along.
    const r = await fetch(`${s.reg.url}/v2/docker.io/library/app/manifests/1`, { headers: { accept: idx.mediaType } });
    assert.equal(r.headers.get('docker-content-digest'), idx.digest);
    await assertIntact(s.reg.url, 'docker.io/library/app', idx.images[0]!.digest, idx.images[0]!);
    assert.equal(await s.reg.ctx.repo('docker.io/library/app' as never).hasManifest(idx.images[2]!.digest), false);
    assert.equal(
      (await fetch(`${s.reg.url}/v2/docker.io/library/app/manifests/${digestTag(idx.digest)}.sig`)).status,
      200,
    );
  } finally {
    await s.close();
  }
});

test('RateLimit-Remaining below the floor makes the job wait instead of spending the rest', async () => {
  const s = await setup({ images: ['docker.io/library/app'], ratelimit: { min: 5, retry: '300ms' } });
  try {
    await pushImage(s.up.url, 'library/app', '1', await makeImage({ label: 'rl' }));
    s.proxy.addHeaders = { 'ratelimit-remaining': '2;w=21600' };
    const started = Date.now();
    const running = s.job().run();
    await sleep(700);
    // Still waiting: nothing copied while the limit is low.
    assert.equal(await tagOf(s.reg, 'docker.io/library/app', '1'), null);
    s.proxy.addHeaders = { 'ratelimit-remaining': '90;w=21600' };
    const run = await running;
    assert.deepEqual(run.copied, ['docker.io/library/app:1']);
    assert.ok(Date.now() - started >= 700);
  } finally {
    await s.close();
  }
});

test('the scheduler runs a job inside the server on its schedule, never twice at once', async () => {
  const up = await startRegistry();
  const proxy = await startFaultProxy(up.url);
  await pushImage(up.url, 'library/app', '1', await makeImage({ label: 'sched' }));
  // Every tag list waits, so a run takes longer than the schedule's period.
  proxy.mode = { kind: 'hang' };
  const reg = await startRegistry({
    upstreams: { 'docker.io': { url: proxy.url, timeout: '1500ms' } },
    flows: [{ images: ['docker.io/**'] }],
    mirrors: [{ name: 'sched', images: ['docker.io/library/app'], every: '200ms' }],
  });
  try {
    // The first run starts within a period (plus jitter) of the start; a loaded machine may take longer.
    const started = Date.now() + 10_000;
    while (proxy.seen.length === 0 && Date.now() < started) await sleep(50);
    assert.ok(proxy.seen.length >= 1, 'no scheduled run reached the upstream');
    // Five periods later still one run under way: one ping or tag list hanging, not five.
    await sleep(1000);
    assert.ok(proxy.seen.length <= 2, proxy.seen.join('\n'));
    proxy.mode = { kind: 'pass' };
    const deadline = Date.now() + 15_000;
    let ok = false;
    while (!ok && Date.now() < deadline) {
      ok = (await tagOf(reg, 'docker.io/library/app', '1')) !== null;
      if (!ok) await sleep(200);
    }
    assert.ok(ok, 'the scheduled job never copied the image');
    // The run is counted when it ends, which is after its last tag is written: wait for it.
    const counted = /sluice_sync_runs_total\{job="sched",result="(ok|errors|failed)"\} \d+/;
    let metrics = '';
    const countBy = Date.now() + 10_000;
    while (Date.now() < countBy) {
      metrics = await (await fetch(`${reg.url}/metrics`)).text();
      if (counted.test(metrics)) break;
      await sleep(100);
    }
    assert.match(metrics, counted);
  } finally {
    await reg.close();
    await proxy.close();
    await up.close();
  }
});
