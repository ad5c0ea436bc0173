import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Collector, type CollectOptions, type CollectReport } from '../../src/gc/collector.js';
import { lifecycleOf } from '../../src/gc/lifecycle.js';
import { nodePullsPath } from '../../src/gc/pulls.js';
import type { RepositoryName } from '../../src/oci/name.js';
import { blobDataPath, tagCurrentPath } from '../../src/storage/layout.js';
import { readLink } from '../../src/storage/links.js';
import { scratch, skopeo, skopeoCopy } from '../helpers/clients.js';
import { makeImage, pushImage, type TestImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { needTools } from '../helpers/tools.js';
import { startCache, type TestCache } from '../proxy/helpers.js';

const GRACE = 60_000;
const DAY = 86_400_000;
const OFFICIAL = [{ images: ['docker.io/library/*'] }];
const REPO = 'docker.io/library/busybox' as RepositoryName;

/** Passes over the cache's storage with the lifecycle its config asks for, on a clock `ahead` in the future. */
function passes(cache: TestRegistry, ahead: number, extra: Partial<CollectOptions> = {}) {
  const collector = new Collector(cache.ctx.driver);
  const lifecycle = lifecycleOf(cache.ctx.config)!;
  let clock = Date.now() + ahead;
  const run = () =>
    collector.collect({
      graceMs: GRACE,
      deleteUntagged: false,
      dryRun: false,
      now: () => clock,
      lifecycle,
      settleMs: 0,
      ...extra,
    });
  return {
    now: () => clock,
    /** Two passes a grace apart: the first records, the second deletes. */
    sweep: async (): Promise<CollectReport> => {
      await run();
      clock += GRACE + 1;
      return run();
    },
  };
}

async function recordPulls(
  reg: TestRegistry,
  repo: string,
  pulls: { tags?: Record<string, number>; manifests?: Record<string, number> },
): Promise<void> {
  await reg.ctx.driver.putContent(
    nodePullsPath(repo as RepositoryName, 'test-node'),
    Buffer.from(JSON.stringify({ tags: pulls.tags ?? {}, manifests: pulls.manifests ?? {} })),
  );
}

/** Pulls an image through the cache over HTTP, as a client would: the manifest, then every blob. */
async function pullThrough(cache: TestCache, ref: string, img: TestImage): Promise<void> {
  const m = await fetch(`${cache.url}/v2/${REPO}/manifests/${ref}`, { headers: { accept: img.mediaType } });
  assert.equal(m.status, 200, await m.text());
  for (const b of [img.config, ...img.layers])
    assert.equal((await fetch(`${cache.url}/v2/${REPO}/blobs/${b.descriptor.digest}`)).status, 200);
}

async function cached(cache: TestRegistry, tag: string): Promise<string | null> {
  return readLink(cache.ctx.driver, tagCurrentPath(REPO, tag));
}

async function hasBlob(cache: TestRegistry, img: TestImage): Promise<boolean> {
  return (await cache.ctx.driver.stat(blobDataPath(img.layers[0]!.descriptor.digest))) !== null;
}

function line(report: CollectReport, tag: string): string | undefined {
  return report.lifecycle?.find((l) => l.tag === tag)?.reason;
}

test('a cached image nobody pulled for upstreams.*.evict.unpulled is evicted, and the next skopeo pull fetches it again', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const up = await startRegistry();
  t.after(() => up.close());
  const cache = await startCache(up.url, OFFICIAL, { evict: { unpulled: '30d' } });
  t.after(() => cache.close());
  const { dir, cleanup } = await scratch();
  t.after(cleanup);
  const [one, two] = await Promise.all(['one', 'two'].map((label) => makeImage({ label })));
  await pushImage(up.url, 'library/busybox', '1', one!);
  await pushImage(up.url, 'library/busybox', '2', two!);
  for (const tag of ['1', '2']) await skopeoCopy(`docker://${cache.host}/${REPO}:${tag}`, `oci:${dir}/first-${tag}`);
  assert.equal(await cached(cache, '1'), one!.digest);
  const gc = passes(cache, 40 * DAY);
  // Only 2 was pulled within the last 30 days (of the moved clock); 1 was cached 40 days ago and never pulled.
  await recordPulls(cache, REPO, { tags: { '2': gc.now() - DAY } });
  const report = await gc.sweep();
  assert.match(
    line(report, '1')!,
    /^evicted: never pulled, cached \d{4}-\d\d-\d\d; upstreams\.docker\.io\.evict keeps 30d unpulled$/,
  );
  assert.match(line(report, '2')!, /^kept in the cache: pulled last .*, within 30d \(upstreams\.docker\.io\.evict\)$/);
  assert.equal(await cached(cache, '1'), null);
  assert.equal(await hasBlob(cache, one!), false, "the evicted image's layer is gone");
  assert.equal(await cached(cache, '2'), two!.digest);
  assert.equal(await hasBlob(cache, two!), true);
  const fetches = async () =>
    (await cache.audit()).filter(
      (r) => r.action === 'fetch' && r.decision === 'allowed' && String(r.reference).startsWith('1@'),
    ).length;
  const before = await fetches();
  await skopeoCopy(`docker://${cache.host}/${REPO}:1`, `oci:${dir}/again`);
  const inspected = JSON.parse((await skopeo(['inspect', '--raw', `oci:${dir}/again`])).stdout) as {
    layers: { digest: string }[];
  };
  assert.equal(inspected.layers[0]!.digest, one!.layers[0]!.descriptor.digest);
  assert.equal(await cached(cache, '1'), one!.digest, 'the cache holds it again');
  assert.equal(await hasBlob(cache, one!), true);
  assert.ok((await fetches()) > before, 'the image came from the upstream again');
});

test('cache eviction keeps mirror-job repositories whatever their pulls, and digest-only pulls while they are pulled (Zot #4148)', async (t) => {
  const up = await startRegistry();
  t.after(() => up.close());
  const cache = await startCache(up.url, OFFICIAL, { evict: { unpulled: '30d' } });
  t.after(() => cache.close());
  const [tagged, byDigest, stale] = await Promise.all(
    ['tagged', 'by-digest', 'stale'].map((label) => makeImage({ label })),
  );
  await pushImage(up.url, 'library/busybox', '1', tagged!);
  await pushImage(up.url, 'library/busybox', 'x', byDigest!);
  await pushImage(up.url, 'library/busybox', 'y', stale!);
  await pushImage(up.url, 'library/alpine', '3', tagged!);
  await pullThrough(cache, byDigest!.digest, byDigest!);
  await pullThrough(cache, stale!.digest, stale!);
  const alpine = await fetch(`${cache.url}/v2/docker.io/library/alpine/manifests/3`, {
    headers: { accept: tagged!.mediaType },
  });
  assert.equal(alpine.status, 200);
  // A mirror job follows alpine: the job's selection and prune govern it, never eviction.
  const config = {
    ...cache.ctx.config,
    mirrors: [{ name: 'alpine', images: ['docker.io/library/alpine'], maxprune: 10 }],
  };
  const collector = new Collector(cache.ctx.driver);
  let clock = Date.now() + 40 * DAY;
  await recordPulls(cache, REPO, { manifests: { [byDigest!.digest]: clock - DAY } });
  // delete-untagged on: without eviction's judgement a digest-only pull would go however recently it was pulled.
  const run = () =>
    collector.collect({
      graceMs: GRACE,
      deleteUntagged: true,
      dryRun: false,
      now: () => clock,
      lifecycle: lifecycleOf(config)!,
      settleMs: 0,
    });
  await run();
  clock += GRACE + 1;
  const report = await run();
  assert.equal(
    report.lifecycle?.find((l) => l.repository === 'docker.io/library/alpine')?.reason,
    'kept: mirror job alpine writes this repository (its selection and prune decide)',
  );
  assert.equal(
    await readLink(cache.ctx.driver, tagCurrentPath('docker.io/library/alpine' as RepositoryName, '3')),
    tagged!.digest,
  );
  const kept = (d: string) => report.lifecycle?.find((l) => l.digest === d && l.tag === undefined);
  assert.equal(kept(byDigest!.digest)?.kept, true);
  assert.equal(kept(stale!.digest)?.kept, false);
  assert.equal(await hasBlob(cache, byDigest!), true);
  assert.equal(await hasBlob(cache, stale!), false);
});

test('a cache over upstreams.*.evict.maxsize evicts the least recently pulled images first, counting shared layers once', async (t) => {
  const up = await startRegistry();
  t.after(() => up.close());
  const shared = { 'base.txt': 'x'.repeat(4000) };
  const images = await Promise.all(
    ['a', 'b', 'c'].map((label) => makeImage({ label, layers: [shared, { 'own.txt': `${label}\n` }] })),
  );
  const sizes = images.map((i) => i.manifest.length + i.config.bytes.length + i.layers[1]!.bytes.length);
  // Room for the shared layer and two images' own bytes, not three.
  const cap = images[0]!.layers[0]!.bytes.length + sizes[0]! + sizes[1]! + sizes[2]! - 10;
  const cache = await startCache(up.url, OFFICIAL, { evict: { maxsize: cap } });
  t.after(() => cache.close());
  for (const [i, tag] of ['a', 'b', 'c'].entries()) {
    await pushImage(up.url, 'library/busybox', tag, images[i]!);
    await pullThrough(cache, tag, images[i]!);
  }
  // Pulled after they were cached (a day on), b longest ago.
  const gc = passes(cache, DAY);
  const HOUR = 3_600_000;
  await recordPulls(cache, REPO, { tags: { a: gc.now() - HOUR, b: gc.now() - 3 * HOUR, c: gc.now() - 2 * HOUR } });
  const report = await gc.sweep();
  assert.match(
    line(report, 'b')!,
    /^evicted: pulled last .*, least recently used while the cache held \d+ bytes; upstreams\.docker\.io\.evict caps it at \d+$/,
  );
  assert.deepEqual(
    [await cached(cache, 'a'), await cached(cache, 'b'), await cached(cache, 'c')],
    [images[0]!.digest, null, images[2]!.digest],
  );
  assert.equal((await cache.ctx.driver.stat(blobDataPath(images[1]!.layers[1]!.descriptor.digest))) === null, true);
  assert.notEqual(
    await cache.ctx.driver.stat(blobDataPath(images[1]!.layers[0]!.descriptor.digest)),
    null,
    'the shared layer stays',
  );
});

test("a flow rule's evict.unpulled overrides its upstream's for the images that rule lets in", async (t) => {
  const up = await startRegistry();
  t.after(() => up.close());
  const flows = [
    { name: 'short', images: ['docker.io/library/busybox'], evict: { unpulled: '7d' } },
    { images: ['docker.io/library/*'] },
  ];
  const cache = await startCache(up.url, flows, { evict: { unpulled: '30d' } });
  t.after(() => cache.close());
  const [busybox, alpine] = await Promise.all(['busybox', 'alpine'].map((label) => makeImage({ label })));
  await pushImage(up.url, 'library/busybox', '1', busybox!);
  await pushImage(up.url, 'library/alpine', '1', alpine!);
  await pullThrough(cache, '1', busybox!);
  const a = await fetch(`${cache.url}/v2/docker.io/library/alpine/manifests/1`, {
    headers: { accept: alpine!.mediaType },
  });
  assert.equal(a.status, 200);
  const report = await passes(cache, 10 * DAY).sweep();
  const reason = (repo: string) => report.lifecycle?.find((l) => l.repository === repo && l.tag === '1')?.reason;
  assert.match(reason(REPO)!, /^evicted: never pulled, cached .*; flow rule 1 "short" keeps 7d unpulled$/);
  assert.match(
    reason('docker.io/library/alpine')!,
    /^kept in the cache: never pulled, cached .*, within 30d \(upstreams\.docker\.io\.evict\)$/,
  );
  assert.equal(await cached(cache, '1'), null);
  assert.equal(
    await readLink(cache.ctx.driver, tagCurrentPath('docker.io/library/alpine' as RepositoryName, '1')),
    alpine!.digest,
  );
});
