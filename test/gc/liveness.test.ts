import assert from 'node:assert/strict';
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { Claims } from '../../src/gc/claim.js';
import { Collector } from '../../src/gc/collector.js';
import { takeLease } from '../../src/gc/lease.js';
import { activePath, deletingPath, heartbeatPath, leasePath } from '../../src/gc/paths.js';
import { writeDeleting } from '../../src/gc/records.js';
import { runPass } from '../../src/gc/run.js';
import { digestOf, type Digest } from '../../src/oci/digest.js';
import type { StorageDriver } from '../../src/storage/driver.js';
import { sweepWhile } from '../helpers/gc.js';
import { makeImage, pushManifest } from '../helpers/images.js';
import { filesystemOnly, startRegistry } from '../helpers/registry.js';

const GRACE = 60_000;
const quiet = { info: () => undefined, warn: () => undefined };

test('a manifest PUT racing a sweep whose deletion markers are older than ten minutes still gets MANIFEST_BLOB_UNKNOWN', async (t) => {
  if (filesystemOnly(t, "sets the markers' mtime on disk")) return;
  const reg = await startRegistry();
  t.after(() => reg.close());
  const img = await makeImage({ label: 'a long sweep' });
  const r = (await sweepWhile(
    reg,
    img,
    async () => {
      // As if the mark had taken eleven minutes: the markers were written that long ago.
      const old = new Date(Date.now() - 11 * 60_000);
      for (const b of [img.config, ...img.layers])
        await utimes(join(reg.root, deletingPath(b.descriptor.digest)), old, old);
      return pushManifest(reg.url, 'app', 'v1', img.manifest, img.mediaType);
    },
    'app',
  )) as Response;
  const body = (await r.json().catch(() => ({}))) as { errors?: { code: string }[] };
  assert.equal(r.status, 400, JSON.stringify(body));
  assert.equal(body.errors?.[0]?.code, 'MANIFEST_BLOB_UNKNOWN');
  assert.equal((await fetch(`${reg.url}/v2/app/manifests/v1`, { headers: { accept: img.mediaType } })).status, 404);
});

test('a claim stops waiting for deletion markers whose sweep no longer beats, and ignores markers without a heartbeat at once', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const driver = reg.ctx.driver;
  const d = digestOf(Buffer.from('left by a dead collector'));
  await driver.putContent(activePath, Buffer.from('x'));
  await writeDeleting(driver, [d]);
  const claims = new Claims(driver, { knowledgeMs: 0, stallMs: 1000 });
  // No heartbeat: no sweep runs, the marker is a leftover.
  await claims.claim([d]);
  // A heartbeat that never changes: a collector that died mid-sweep. The claim goes on (a live sweep would have stopped deleting by now).
  await driver.putContent(heartbeatPath, Buffer.from('dead 1'));
  await claims.claim([d]);
});

test("a claim waits for a digest its shard's deletion marker lists, and not for another digest of the same shard", async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const driver = reg.ctx.driver;
  // Two digests whose hex starts alike share one marker (`deletingPath`).
  const [listed, other] = sameShard();
  assert.equal(deletingPath(listed), deletingPath(other));
  await driver.putContent(activePath, Buffer.from('x'));
  await driver.putContent(heartbeatPath, Buffer.from('live 1'));
  await writeDeleting(driver, [listed]);
  const claims = new Claims(driver, { knowledgeMs: 0, stallMs: 60_000 });
  const t0 = performance.now();
  await claims.claim([other]);
  assert.ok(performance.now() - t0 < 1000, 'a digest the marker does not list waited for the sweep');
  let done = false;
  const waiting = claims.claim([listed]).then(() => (done = true));
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(done, false, 'a digest the marker lists did not wait for the sweep');
  await driver.delete(deletingPath(listed));
  await waiting;
});

/** Two digests of one marker shard: the same first two hex digits. */
function sameShard(): [Digest, Digest] {
  const seen = new Map<string, Digest>();
  for (let i = 0; ; i++) {
    const d = digestOf(Buffer.from(`shard ${i}`));
    const prefix = d.slice('sha256:'.length, 'sha256:'.length + 2);
    const first = seen.get(prefix);
    if (first) return [first, d];
    seen.set(prefix, d);
  }
}

/** The filesystem driver with conditional creates, as on S3 with If-None-Match (enough within one process). */
function exclusive(driver: StorageDriver): StorageDriver {
  return Object.assign(Object.create(driver) as StorageDriver, {
    exclusiveCreate: async () => true,
    putContent: async (path: string, data: Uint8Array, o?: { ifAbsent?: boolean }) => {
      if (o?.ifAbsent && (await driver.stat(path)))
        throw Object.assign(new Error(`object exists: ${path}`), { code: 'EEXIST' });
      return driver.putContent(path, data);
    },
  });
}

test('a pass longer than its lease renews it, so no second collector takes over', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const driver = exclusive(reg.ctx.driver);
  let second: Awaited<ReturnType<typeof takeLease>> | undefined;
  const report = await runPass(driver, new Collector(driver), {
    graceMs: GRACE,
    deleteUntagged: false,
    dryRun: false,
    role: 'auto',
    log: quiet,
    leaseMs: 3000,
    // Over two lease durations into the pass, another collector tries.
    beforeSweep: async () => {
      await new Promise((r) => setTimeout(r, 7000));
      second = await takeLease(driver, 'auto', 3000);
    },
  });
  assert.ok(!('refused' in report), JSON.stringify(report));
  assert.ok(second && 'refused' in second, 'a second collector took the lease of a pass in progress');
  assert.equal(await driver.stat(leasePath), null, 'released at the end');
});
