import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Collector, type CollectOptions } from '../../src/gc/collector.js';
import { makeImage, pushBlob, pushImage, pushManifest, type TestImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const GRACE = 60_000;

/** Runs passes with a clock the test moves, so grace never waits on the wall clock. */
function passes(reg: TestRegistry, extra: Partial<CollectOptions> = {}) {
  const collector = new Collector(reg.ctx.driver);
  let clock = Date.now();
  return {
    run: (o: Partial<CollectOptions> = {}) =>
      collector.collect({ graceMs: GRACE, deleteUntagged: false, dryRun: false, now: () => clock, ...extra, ...o }),
    advance: (ms: number) => (clock += ms),
  };
}

async function blobStatus(reg: TestRegistry, repo: string, digest: string): Promise<number> {
  return (await fetch(`${reg.url}/v2/${repo}/blobs/${digest}`)).status;
}

/** Every blob of the image answers 200 and the manifest by tag is the one pushed. */
async function pullsWhole(reg: TestRegistry, repo: string, tag: string, img: TestImage): Promise<void> {
  const m = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: img.mediaType } });
  assert.equal(m.status, 200);
  assert.equal(m.headers.get('docker-content-digest'), img.digest);
  for (const b of [img.config, ...img.layers])
    assert.equal(await blobStatus(reg, repo, b.descriptor.digest), 200, b.descriptor.digest);
}

test('Collector.collect() records an unreferenced blob first and deletes it only in a pass after the grace', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const img = await makeImage({ label: 'kept' });
  await pushImage(reg.url, 'app', 'v1', img);
  const orphan = await pushBlob(reg.url, 'app', Buffer.from('nobody names me'));
  const gc = passes(reg);
  const first = await gc.run();
  assert.deepEqual(
    first.verdicts.filter((v) => v.garbage.kind === 'blob').map((v) => [v.garbage.digest, v.action]),
    [[orphan, 'recorded']],
  );
  assert.equal(await blobStatus(reg, 'app', orphan), 200);
  gc.advance(GRACE / 2);
  assert.equal((await gc.run()).deletedObjects, 0);
  assert.equal(await blobStatus(reg, 'app', orphan), 200);
  gc.advance(GRACE);
  const third = await gc.run();
  assert.equal(third.deletedObjects, 2, 'the blob and its layer link');
  assert.equal(third.reclaimedBytes, 'nobody names me'.length);
  assert.equal(await blobStatus(reg, 'app', orphan), 404);
  assert.deepEqual(
    await reg
      .files('docker/registry/v2/repositories/app/_layers')
      .then((f) => f.filter((x) => x.includes(orphan.slice(7)))),
    [],
  );
  await pullsWhole(reg, 'app', 'v1', img);
});

test('Collector.collect() keeps the layers of an overwritten tag unless delete-untagged is on', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const a = await makeImage({ label: 'a' });
  const b = await makeImage({ label: 'b' });
  await pushImage(reg.url, 'app', 'latest', a);
  await pushImage(reg.url, 'app', 'latest', b);
  const gc = passes(reg);
  await gc.run();
  gc.advance(GRACE + 1);
  assert.equal((await gc.run()).deletedObjects, 0);
  assert.equal(
    (await fetch(`${reg.url}/v2/app/manifests/${a.digest}`, { headers: { accept: a.mediaType } })).status,
    200,
  );
  await gc.run({ deleteUntagged: true });
  gc.advance(GRACE + 1);
  const swept = await gc.run({ deleteUntagged: true });
  const gone = new Set(
    swept.verdicts.filter((v) => v.action === 'deleted').map((v) => `${v.garbage.kind} ${v.garbage.digest}`),
  );
  assert.ok(gone.has(`manifest ${a.digest}`));
  assert.ok(gone.has(`blob ${a.digest}`));
  assert.ok(gone.has(`blob ${a.layers[0]!.descriptor.digest}`));
  assert.equal(
    (await fetch(`${reg.url}/v2/app/manifests/${a.digest}`, { headers: { accept: a.mediaType } })).status,
    404,
  );
  await pullsWhole(reg, 'app', 'latest', b);
});

test('Collector.collect() keeps a candidate blob that a pusher HEADed during the grace, and starts its grace again', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const orphan = await pushBlob(reg.url, 'app', Buffer.from('headed later'));
  const gc = passes(reg);
  await gc.run();
  assert.equal((await fetch(`${reg.url}/v2/app/blobs/${orphan}`, { method: 'HEAD' })).status, 200);
  gc.advance(GRACE + 1);
  const report = await gc.run();
  assert.equal(report.deletedObjects, 0);
  assert.equal(report.verdicts.find((v) => v.garbage.kind === 'blob')?.action, 'recorded');
  assert.equal(await blobStatus(reg, 'app', orphan), 200);
});

test('Collector.collect() with dryRun changes nothing and reports what a sweep would delete', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  await pushBlob(reg.url, 'app', Buffer.from('dry'));
  const before = await reg.files();
  const gc = passes(reg, { dryRun: true });
  const report = await gc.run();
  assert.equal(report.verdicts.length, 2);
  assert.ok(report.verdicts.every((v) => v.action === 'recorded'));
  assert.deepEqual(await reg.files(), before);
});

test('a manifest PUT naming a blob the collector is deleting gets MANIFEST_BLOB_UNKNOWN and stores nothing', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const img = await makeImage({ label: 'late' });
  // Layer and config pushed long ago; the manifest that names them comes while the collector deletes them.
  await pushBlob(reg.url, 'app', img.config);
  for (const l of img.layers) await pushBlob(reg.url, 'app', l);
  const gc = passes(reg);
  await gc.run();
  gc.advance(GRACE + 1);
  let put: Promise<Response> | undefined;
  const report = await gc.run({
    beforeSweep: async () => {
      put = pushManifest(reg.url, 'app', 'v1', img.manifest, img.mediaType);
      // Without the claim, the PUT passes its check and stores now, before the blobs go.
      await Promise.race([put, new Promise((r) => setTimeout(r, 3000))]);
    },
  });
  assert.ok(report.deletedObjects > 0);
  const r = await put!;
  const body = (await r.json().catch(() => ({}))) as { errors?: { code: string }[] };
  const stored = await fetch(`${reg.url}/v2/app/manifests/v1`, { headers: { accept: img.mediaType } });
  if (r.status === 201) {
    // Had the PUT won, every blob it names must still be there.
    await pullsWhole(reg, 'app', 'v1', img);
  } else {
    assert.equal(r.status, 400);
    assert.equal(body.errors?.[0]?.code, 'MANIFEST_BLOB_UNKNOWN');
    assert.equal(stored.status, 404);
  }
  assert.equal(await blobStatus(reg, 'app', img.config.descriptor.digest), r.status === 201 ? 200 : 404);
});

test('Collector.collect() on one node keeps a candidate that a pusher HEADed on another node of the same storage', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const collectorNode = await startRegistry({}, reg.root);
  t.after(() => collectorNode.close());
  const orphan = await pushBlob(reg.url, 'app', Buffer.from('claimed elsewhere'));
  const gc = passes(collectorNode);
  await gc.run();
  assert.equal((await fetch(`${reg.url}/v2/app/blobs/${orphan}`, { method: 'HEAD' })).status, 200);
  gc.advance(GRACE + 1);
  assert.equal((await gc.run()).deletedObjects, 0);
  assert.equal(await blobStatus(reg, 'app', orphan), 200);
});

test('a read-only node with storage.gc enabled never collects', async (t) => {
  const writer = await startRegistry();
  t.after(() => writer.close());
  const orphan = await pushBlob(writer.url, 'app', Buffer.from('left alone'));
  const reader = await startRegistry(
    {
      storage: {
        gc: { enabled: true, interval: '1s', grace: '0s', collector: true },
        maintenance: { readonly: { enabled: true } },
      },
    },
    writer.root,
  );
  t.after(() => reader.close());
  // Three intervals with no grace: a node that collected would have recorded and then deleted the blob by now.
  await new Promise((r) => setTimeout(r, 3500));
  assert.equal(await blobStatus(writer, 'app', orphan), 200);
  assert.deepEqual(await writer.files('docker/registry/v2/_sluice'), []);
});
