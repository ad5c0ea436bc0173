import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Claims } from '../../src/gc/claim.js';
import { Collector, type CollectOptions } from '../../src/gc/collector.js';
import { takeLease } from '../../src/gc/lease.js';
import { activePath, heartbeatPath, leasePath } from '../../src/gc/paths.js';
import { writeDeleting } from '../../src/gc/records.js';
import { runPass } from '../../src/gc/run.js';
import { digestOf } from '../../src/oci/digest.js';
import type { RepositoryName } from '../../src/oci/name.js';
import { buildMirrorJobs } from '../../src/registry/sync-setup.js';
import { S3Driver } from '../../src/storage/s3.js';
import { sweepWhile } from '../helpers/gc.js';
import { makeImage, pushBlob, pushImage, pushManifest, type TestImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { sluice } from '../helpers/sluice-cli.js';
import { hasSwift, startSwift, type TestSwift } from '../helpers/swift.js';
import { clientsRequired } from '../helpers/tools.js';

// The collector on OpenStack Swift's s3api (SigV4, one replica): the core scenarios of collector, claims,
// liveness, writers and lease tests, each on a rootdirectory of its own in one bucket.
const SWIFT_MISSING =
  'OpenStack Swift not installed (apt-get install swift swift-proxy swift-object swift-container swift-account memcached)';
if (!hasSwift() && clientsRequired) throw new Error(`SLUICE_REQUIRE_CLIENTS is set but ${SWIFT_MISSING}`);
const skip = hasSwift() ? false : SWIFT_MISSING;
const GRACE = 60_000;
const quiet = { info: () => undefined, warn: () => undefined };
let swift: TestSwift;

before(async () => {
  if (!skip) swift = await startSwift('gcbucket');
});

after(async () => {
  await swift?.close();
});

/** A registry node on `root` of the Swift bucket, with the builder's key. */
function node(root: string, extra: Record<string, unknown> = {}): Promise<TestRegistry> {
  return startRegistry({ ...extra, storage: { filesystem: undefined, s3: swift.config(root, swift.builder) } });
}

/** Passes with a clock the test moves, so the grace never waits on the wall clock. */
function passes(reg: TestRegistry) {
  const collector = new Collector(reg.ctx.driver);
  let clock = Date.now();
  return {
    run: (o: Partial<CollectOptions> = {}) =>
      collector.collect({ graceMs: GRACE, deleteUntagged: false, dryRun: false, now: () => clock, ...o }),
    advance: (ms: number) => (clock += ms),
  };
}

async function blobStatus(reg: TestRegistry, repo: string, digest: string): Promise<number> {
  return (await fetch(`${reg.url}/v2/${repo}/blobs/${digest}`)).status;
}

async function pullsWhole(reg: TestRegistry, repo: string, tag: string, img: TestImage): Promise<void> {
  const m = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: img.mediaType } });
  assert.equal(m.status, 200);
  assert.equal(m.headers.get('docker-content-digest'), img.digest);
  for (const b of [img.config, ...img.layers])
    assert.equal(await blobStatus(reg, repo, b.descriptor.digest), 200, b.descriptor.digest);
}

test('on Swift: an unused blob is recorded, kept through the grace, then deleted with its layer link; the tagged image stays whole', {
  skip,
}, async (t) => {
  const reg = await node('gc-collect');
  t.after(() => reg.close());
  const img = await makeImage({ label: 'swift kept' });
  await pushImage(reg.url, 'app', 'v1', img);
  const orphan = await pushBlob(reg.url, 'app', Buffer.from('nobody names me on swift'));
  const gc = passes(reg);
  const first = await gc.run();
  assert.deepEqual(
    first.verdicts.filter((v) => v.garbage.kind === 'blob').map((v) => [v.garbage.digest, v.action]),
    [[orphan, 'recorded']],
  );
  gc.advance(GRACE / 2);
  assert.equal((await gc.run()).deletedObjects, 0);
  assert.equal(await blobStatus(reg, 'app', orphan), 200);
  gc.advance(GRACE);
  const third = await gc.run();
  assert.equal(third.deletedObjects, 2, 'the blob and its layer link');
  assert.equal(await blobStatus(reg, 'app', orphan), 404);
  assert.deepEqual(
    (await reg.files('docker/registry/v2/repositories/app/_layers')).filter((f) => f.includes(orphan.slice(7))),
    [],
  );
  await pullsWhole(reg, 'app', 'v1', img);
  // Nothing is left pending, so the collector took `active` away and claims are free again.
  assert.deepEqual(await reg.files('docker/registry/v2/_sluice/gc'), []);
});

test('on Swift: a manifest PUT naming blobs the sweep is deleting gets MANIFEST_BLOB_UNKNOWN and stores nothing', {
  skip,
}, async (t) => {
  const reg = await node('gc-race');
  t.after(() => reg.close());
  const img = await makeImage({ label: 'swift late manifest' });
  const r = (await sweepWhile(
    reg,
    img,
    () => pushManifest(reg.url, 'app', 'v1', img.manifest, img.mediaType),
    'app',
  )) as Response;
  const body = (await r.json().catch(() => ({}))) as { errors?: { code: string }[] };
  assert.equal(r.status, 400, JSON.stringify(body));
  assert.equal(body.errors?.[0]?.code, 'MANIFEST_BLOB_UNKNOWN');
  assert.equal((await fetch(`${reg.url}/v2/app/manifests/v1`, { headers: { accept: img.mediaType } })).status, 404);
  assert.equal(await blobStatus(reg, 'app', img.config.descriptor.digest), 404);
});

test('on Swift: a candidate a pusher HEADed on another node of the bucket is kept, and its grace starts again', {
  skip,
}, async (t) => {
  const pusher = await node('gc-claim');
  t.after(() => pusher.close());
  const collectorNode = await node('gc-claim');
  t.after(() => collectorNode.close());
  const orphan = await pushBlob(pusher.url, 'app', Buffer.from('claimed on the other node'));
  const gc = passes(collectorNode);
  await gc.run();
  assert.equal((await fetch(`${pusher.url}/v2/app/blobs/${orphan}`, { method: 'HEAD' })).status, 200);
  gc.advance(GRACE + 1);
  const report = await gc.run();
  assert.equal(report.deletedObjects, 0);
  assert.equal(report.verdicts.find((v) => v.garbage.kind === 'blob')?.action, 'recorded');
  assert.equal(await blobStatus(pusher, 'app', orphan), 200);
});

test('on Swift: a mirror job copying an image while the sweep deletes its blobs stores it whole', {
  skip,
}, async (t) => {
  const up = await startRegistry();
  t.after(() => up.close());
  const reg = await node('gc-mirror', {
    upstreams: { 'docker.io': { url: up.url } },
    flows: [{ images: ['docker.io/team/*'] }],
    mirrors: [{ name: 'm', images: ['docker.io/team/app'] }],
  });
  t.after(() => reg.close());
  const img = await makeImage({ label: 'swift mirrored while collected' });
  await pushImage(up.url, 'team/app', 'v1', img);
  const job = buildMirrorJobs(reg.ctx, reg.ctx.config, quiet)[0]!;
  const summary = (await sweepWhile(reg, img, () => job.run())) as { ok: boolean; errors: unknown[] };
  assert.equal(summary.ok, true, JSON.stringify(summary.errors));
  const repo = reg.ctx.repo('docker.io/team/app' as RepositoryName);
  assert.equal(await repo.resolveTag('v1'), img.digest);
  for (const b of [img.config, ...img.layers])
    assert.notEqual(await repo.blobSize(b.descriptor.digest as never), null, b.descriptor.digest);
});

test('on Swift: a claim ignores deletion markers without a heartbeat and gives up on a heartbeat that stopped', {
  skip,
}, async (t) => {
  const reg = await node('gc-dead');
  t.after(() => reg.close());
  const driver = reg.ctx.driver;
  const d = digestOf(Buffer.from('left by a dead collector on swift'));
  await driver.putContent(activePath, Buffer.from('x'));
  await writeDeleting(driver, [d]);
  const claims = new Claims(driver, { knowledgeMs: 0, stallMs: 1000 });
  await claims.claim([d]);
  await driver.putContent(heartbeatPath, Buffer.from('dead 1'));
  const t0 = performance.now();
  await claims.claim([d]);
  assert.ok(performance.now() - t0 >= 900, 'the claim waited for the heartbeat to stall before going on');
});

test('on Swift: a conditional PUT is answered 501 NotImplemented, so no lease: auto refuses to collect, collector: true collects', {
  skip,
}, async (t) => {
  // What Swift 2.30's s3api answers to If-None-Match: * (AWS S3 answers 412 when the key exists).
  const client = new S3Client({
    region: 'us-east-1',
    endpoint: swift.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: swift.builder.accesskey, secretAccessKey: swift.builder.secretkey },
  });
  t.after(() => client.destroy());
  const key = `gc-lease/probe-${randomUUID()}`;
  await client.send(new PutObjectCommand({ Bucket: swift.bucket, Key: key, Body: 'first' }));
  const refused = await client
    .send(new PutObjectCommand({ Bucket: swift.bucket, Key: key, Body: 'second', IfNoneMatch: '*' }))
    .then(
      () => null,
      (e: { name?: string; message?: string; $metadata?: { httpStatusCode?: number } }) => e,
    );
  assert.ok(
    refused,
    'Swift accepted a conditional PUT over an existing key: it now has conditional writes, test the lease for real',
  );
  assert.equal(refused.$metadata?.httpStatusCode, 501);
  assert.equal(refused.name, 'NotImplemented');
  t.diagnostic(
    `Swift s3api on If-None-Match: *: ${refused.$metadata?.httpStatusCode} ${refused.name}: ${refused.message}`,
  );

  const driver = new S3Driver(swift.config('gc-lease', swift.builder) as never);
  t.after(() => driver.destroy());
  assert.equal(await driver.exclusiveCreate(), false, 'the probe reports no conditional writes');
  const auto = await takeLease(driver, 'auto', 60_000);
  assert.ok('refused' in auto && /no conditional writes/.test(auto.refused), JSON.stringify(auto));
  // Two nodes left on auto: neither collects, so two collectors never sweep one bucket at once.
  const pass = await runPass(driver, new Collector(driver), {
    graceMs: 0,
    deleteUntagged: false,
    dryRun: false,
    role: 'auto',
    log: quiet,
  });
  assert.ok('refused' in pass);
  assert.equal(await driver.stat(leasePath), null, 'no lease object was written');

  const reg = await node('gc-lease');
  t.after(() => reg.close());
  const orphan = await pushBlob(reg.url, 'app', Buffer.from('swept by the configured collector'));
  const cfg = (collector: unknown) => ({ version: 0.1, storage: { s3: reg.ctx.config.storage.s3, gc: { collector } } });
  const file = join(tmpdir(), `sluice-gc-swift-${randomUUID()}.yml`);
  await writeFile(file, JSON.stringify(cfg('auto')));
  const no = await sluice(['gc', '--grace', '0s', file]);
  assert.equal(no.code, 1);
  assert.match(no.stderr, /gc not run: the storage has no conditional writes/);
  assert.equal(await blobStatus(reg, 'app', orphan), 200);
  await writeFile(file, JSON.stringify(cfg(true)));
  const yes = await sluice(['gc', '--grace', '0s', file]);
  assert.equal(yes.code, 0, yes.stderr);
  assert.equal(await blobStatus(reg, 'app', orphan), 404);
});
