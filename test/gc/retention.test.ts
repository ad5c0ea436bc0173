import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { ACTIVE_SETTLE_MS } from '../../src/gc/claim.js';
import { Collector, type CollectOptions, type CollectReport } from '../../src/gc/collector.js';
import { lifecycleOf } from '../../src/gc/lifecycle.js';
import { nodePullsPath } from '../../src/gc/pulls.js';
import type { RepositoryName } from '../../src/oci/name.js';
import { retentionSchema, type RetentionRuleConfig } from '../../src/policy/retention-config.js';
import { makeImage, makeIndex, pushAsReferrer, pushImage, pushManifest, type TestImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const GRACE = 60_000;
const DAY = 86_400_000;

/**
 * Passes with a clock the test moves, applying `retention` as `sluice serve` would. Without a writer racing the
 * sweep, `active` need not stand before the first record (`settleMs: 0`); the racing test keeps the default.
 */
function passes(reg: TestRegistry, retention: unknown[], extra: Partial<CollectOptions> = {}) {
  const collector = new Collector(reg.ctx.driver);
  const lifecycle = lifecycleOf({ retention: retentionSchema.parse(retention) as RetentionRuleConfig[] })!;
  let clock = Date.now();
  return {
    run: (o: Partial<CollectOptions> = {}) =>
      collector.collect({
        graceMs: GRACE,
        deleteUntagged: false,
        dryRun: false,
        now: () => clock,
        lifecycle,
        settleMs: 0,
        ...extra,
        ...o,
      }),
    advance: (ms: number) => (clock += ms),
    now: () => clock,
  };
}

/** Records pulls as the pull recorder would: one node's file of the repository. */
async function recordPulls(
  reg: TestRegistry,
  repo: string,
  pulls: { tags?: Record<string, number>; manifests?: Record<string, number> },
): Promise<void> {
  const doc = { tags: pulls.tags ?? {}, manifests: pulls.manifests ?? {} };
  await reg.ctx.driver.putContent(nodePullsPath(repo as RepositoryName, 'test-node'), Buffer.from(JSON.stringify(doc)));
}

/** Push time is a link's modification time: on S3 it has whole seconds, so pushes that must be ordered wait. */
async function pushInOrder(reg: TestRegistry, repo: string, images: [string, TestImage][]): Promise<void> {
  for (const [tag, img] of images) {
    await pushImage(reg.url, repo, tag, img);
    if (reg.storage === 's3') await sleep(1100);
  }
}

async function status(reg: TestRegistry, path: string, accept?: string): Promise<number> {
  return (await fetch(`${reg.url}/v2/${path}`, accept ? { headers: { accept } } : {})).status;
}

/** The manifest by tag is the one pushed and every blob of it is there. */
async function pullsWhole(reg: TestRegistry, repo: string, tag: string, img: TestImage): Promise<void> {
  const m = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: img.mediaType } });
  assert.equal(m.status, 200, `${repo}:${tag}`);
  assert.equal(m.headers.get('docker-content-digest'), img.digest);
  for (const b of [img.config, ...img.layers])
    assert.equal(await status(reg, `${repo}/blobs/${b.descriptor.digest}`), 200, b.descriptor.digest);
}

function sigTag(img: TestImage): string {
  return `sha256-${img.digest.slice('sha256:'.length)}.sig`;
}

function lifecycleLine(report: CollectReport, tag: string): string | undefined {
  return report.lifecycle?.find((l) => l.tag === tag)?.reason;
}

/** Two passes a grace apart: the first records, the second deletes. */
async function sweep(gc: ReturnType<typeof passes>): Promise<[CollectReport, CollectReport]> {
  const first = await gc.run();
  gc.advance(GRACE + 1);
  return [first, await gc.run()];
}

test('retention deletes the tags no rule keeps with their manifests, blobs, signatures and referrers, and keeps the rest whole', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const [v1, v2, v3, v4] = await Promise.all(['v1', 'v2', 'v3', 'v4'].map((label) => makeImage({ label })));
  await pushInOrder(reg, 'app', [
    ['v1', v1!],
    ['v2', v2!],
    ['v3', v3!],
    ['v4', v4!],
  ]);
  const [sig2, sig3, sbom2] = await Promise.all(['sig2', 'sig3', 'sbom2'].map((label) => makeImage({ label })));
  await pushImage(reg.url, 'app', sigTag(v2!), sig2!);
  await pushImage(reg.url, 'app', sigTag(v3!), sig3!);
  const referrer = await pushAsReferrer(reg.url, 'app', sbom2!, v2!);
  const gc = passes(reg, [
    { images: ['app'], latest: 2 },
    { images: ['app'], pulledwithin: '30d' },
  ]);
  await recordPulls(reg, 'app', { tags: { v1: gc.now() - DAY } });
  const first = await gc.run();
  assert.equal(lifecycleLine(first, 'v4'), 'kept by rule 1 (latest 2)');
  assert.match(lifecycleLine(first, 'v1')!, /^kept by rule 2 \(pulled within 30d: last \d{4}-\d\d-\d\d\)$/);
  assert.match(
    lifecycleLine(first, 'v2')!,
    /^deleted: pushed \d{4}-\d\d-\d\d, never pulled; rule 1 not among its latest 2; rule 2 keeps 30d since a pull$/,
  );
  assert.equal(lifecycleLine(first, sigTag(v3!)), undefined, 'artifact tags are not judged: they follow their subject');
  assert.equal(await status(reg, 'app/manifests/v2', v2!.mediaType), 200, 'nothing goes in the pass that judges it');
  gc.advance(GRACE + 1);
  const second = await gc.run();
  const gone = second.verdicts
    .filter((v) => v.action === 'deleted')
    .map((v) => `${v.garbage.kind} ${'tag' in v.garbage ? v.garbage.tag : v.garbage.digest}`);
  for (const g of [
    'tag v2',
    `tag ${sigTag(v2!)}`,
    `manifest ${v2!.digest}`,
    `manifest ${referrer}`,
    `blob ${v2!.layers[0]!.descriptor.digest}`,
    `blob ${sig2!.digest}`,
  ]) {
    assert.ok(gone.includes(g), `${g} was not deleted: ${gone.join(', ')}`);
  }
  assert.equal(await status(reg, 'app/manifests/v2', v2!.mediaType), 404);
  assert.equal(await status(reg, `app/manifests/${v2!.digest}`, v2!.mediaType), 404);
  assert.equal(await status(reg, `app/manifests/${sigTag(v2!)}`, sig2!.mediaType), 404);
  assert.equal(await status(reg, `app/blobs/${v2!.layers[0]!.descriptor.digest}`), 404);
  assert.equal(await status(reg, `app/blobs/${sbom2!.layers[0]!.descriptor.digest}`), 404);
  await pullsWhole(reg, 'app', 'v1', v1!);
  await pullsWhole(reg, 'app', 'v3', v3!);
  await pullsWhole(reg, 'app', 'v4', v4!);
  await pullsWhole(reg, 'app', sigTag(v3!), sig3!);
  // Nothing left over: a third pass finds no garbage of these images.
  gc.advance(GRACE + 1);
  assert.deepEqual(
    (await gc.run()).verdicts.map((v) => v.garbage.kind),
    [],
  );
});

test('retention keeps the manifest of a deleted tag while another tag or an index needs it', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const shared = await makeImage({ label: 'shared' });
  const child = await makeImage({ label: 'child' });
  const lonely = await makeImage({ label: 'lonely' });
  const index = makeIndex([child]);
  await pushImage(reg.url, 'app', 'old', shared);
  await pushImage(reg.url, 'app', 'keep-1', shared);
  await pushImage(reg.url, 'app', 'keep-idx', index);
  await pushImage(reg.url, 'app', 'child', child);
  await pushImage(reg.url, 'app', 'gone', lonely);
  const gc = passes(reg, [{ images: ['app'], tags: ['keep-*'] }]);
  const [first] = await sweep(gc);
  assert.equal(lifecycleLine(first, 'keep-1'), 'kept by rule 1 (tags keep-*)');
  assert.equal(await status(reg, 'app/manifests/old', shared.mediaType), 404);
  assert.equal(await status(reg, 'app/manifests/child', child.mediaType), 404);
  assert.equal(await status(reg, 'app/manifests/gone', lonely.mediaType), 404);
  await pullsWhole(reg, 'app', 'keep-1', shared);
  await pullsWhole(reg, 'app', child.digest, child);
  assert.equal(
    await status(reg, `app/manifests/${lonely.digest}`, lonely.mediaType),
    404,
    'the manifest that lost its last tag went with it',
  );
  assert.equal(await status(reg, `app/blobs/${lonely.layers[0]!.descriptor.digest}`), 404);
});

test('retention deletes untagged manifests after their duration unless pulled since, and leaves other repositories alone', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const [old, recent, elsewhere] = await Promise.all(
    ['old', 'recent', 'elsewhere'].map((label) => makeImage({ label })),
  );
  await pushImage(reg.url, 'app', old!.digest, old!);
  await pushImage(reg.url, 'app', recent!.digest, recent!);
  await pushImage(reg.url, 'other', elsewhere!.digest, elsewhere!);
  const gc = passes(reg, [{ images: ['app'], untagged: '1d' }]);
  gc.advance(2 * DAY);
  await recordPulls(reg, 'app', { manifests: { [recent!.digest]: gc.now() - 3_600_000 } });
  const [first] = await sweep(gc);
  const line = (d: string) => first.lifecycle?.find((l) => l.digest === d && l.tag === undefined)?.reason;
  assert.match(line(old!.digest)!, /^deleted: untagged, pushed \d{4}-\d\d-\d\d; rule 1 keeps untagged 1d$/);
  assert.match(line(recent!.digest)!, /^kept by rule 1 \(untagged, pushed .*, pulled last .*, within 1d\)$/);
  assert.equal(await status(reg, `app/manifests/${old!.digest}`, old!.mediaType), 404);
  assert.equal(await status(reg, `app/manifests/${recent!.digest}`, recent!.mediaType), 200);
  assert.equal(
    await status(reg, `other/manifests/${elsewhere!.digest}`, elsewhere!.mediaType),
    200,
    'no rule matches other: it keeps everything',
  );
});

test('retention spares a tag pulled or re-pushed after it was judged, however late before the sweep', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const [a, b, c, a2] = await Promise.all(['a', 'b', 'c', 'a2'].map((label) => makeImage({ label })));
  await pushInOrder(reg, 'app', [
    ['a', a!],
    ['b', b!],
    ['c', c!],
  ]);
  const gc = passes(reg, [
    { images: ['app'], latest: 1 },
    { images: ['app'], pulledwithin: '1h' },
  ]);
  const first = await gc.run();
  assert.deepEqual(
    first.lifecycle?.filter((l) => !l.kept).map((l) => l.tag),
    ['a', 'b'],
  );
  gc.advance(GRACE + 1);
  // b is pulled before the next pass judges again; a is re-pushed between that pass's plan and its deletions.
  await recordPulls(reg, 'app', { tags: { b: gc.now() } });
  const second = await gc.run({
    settleMs: ACTIVE_SETTLE_MS,
    beforeSweep: async () => {
      const r = await pushManifest(reg.url, 'app', 'a', a2!.manifest, a2!.mediaType).catch(() => undefined);
      // The blobs are not there: push them, then the manifest.
      if (r?.status !== 201) await pushImage(reg.url, 'app', 'a', a2!);
    },
  });
  assert.match(lifecycleLine(second, 'b')!, /^kept by rule 2/);
  assert.equal(second.verdicts.find((v) => v.garbage.kind === 'tag' && v.garbage.tag === 'a')?.action, 'kept');
  await pullsWhole(reg, 'app', 'a', a2!);
  await pullsWhole(reg, 'app', 'b', b!);
  await pullsWhole(reg, 'app', 'c', c!);
});

test('a retention dry run reports every verdict and changes nothing', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const [a, b] = await Promise.all(['a', 'b'].map((label) => makeImage({ label })));
  await pushInOrder(reg, 'app', [
    ['a', a!],
    ['b', b!],
  ]);
  const gc = passes(reg, [{ images: ['app'], latest: 1 }], { dryRun: true });
  await gc.run();
  gc.advance(GRACE + 1);
  const report = await gc.run();
  assert.deepEqual(
    report.lifecycle?.map((l) => [l.tag, l.kept]),
    [
      ['a', false],
      ['b', true],
    ],
  );
  assert.deepEqual(await reg.files('docker/registry/v2/_sluice/gc').catch(() => []), []);
  await pullsWhole(reg, 'app', 'a', a!);
});
