import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Collector } from '../../src/gc/collector.js';
import { takeLease, type Lease } from '../../src/gc/lease.js';
import { leasePath } from '../../src/gc/paths.js';
import { runPass } from '../../src/gc/run.js';
import { S3Driver } from '../../src/storage/s3.js';
import { emulateConditionalPuts } from '../helpers/s3-conditional.js';
import { startS3, type TestS3 } from '../helpers/s3.js';

// The collector lease through the S3 driver's real conditional PUTs (If-None-Match: *), two nodes on one
// bucket. s3rver ignores the header, so it is made to honour it as AWS documents (s3-conditional.ts); Swift's
// s3api refuses it (test/gc/swift.test.ts).
const quiet = { info: () => undefined, warn: () => undefined };
let s3: TestS3;

before(async () => {
  s3 = await startS3('gclease');
});

after(async () => {
  await s3?.close();
});

/** A node's driver on `root` of the bucket: each has its own client and connections. */
function nodeDriver(root: string): S3Driver {
  return new S3Driver(s3.config(root) as never);
}

test('on S3 with conditional writes: one node holds the collector lease, the other is refused, and takes it over once it lapses', async (t) => {
  const restore = emulateConditionalPuts();
  t.after(restore);
  const [a, b] = [nodeDriver('lease'), nodeDriver('lease')];
  t.after(() => {
    for (const d of [a, b]) d.destroy();
  });
  assert.equal(await a.exclusiveCreate(), true);
  assert.equal(await b.exclusiveCreate(), true);
  const held = await takeLease(a, 'auto', 1500);
  assert.ok(!('refused' in held), JSON.stringify(held));
  const second = await takeLease(b, 'auto', 1500);
  assert.ok(
    'refused' in second && /another collector holds the lease until/.test(second.refused),
    JSON.stringify(second),
  );
  // A holds it while it renews; once it stops (a node that died), the lease lapses and B takes it over.
  await new Promise((r) => setTimeout(r, 1000));
  await (held as Lease).renew();
  await new Promise((r) => setTimeout(r, 1000));
  assert.ok('refused' in (await takeLease(b, 'auto', 1500)), 'the renewed lease still holds');
  await new Promise((r) => setTimeout(r, 1700));
  const taken = await takeLease(b, 'auto', 60_000);
  assert.ok(!('refused' in taken), JSON.stringify(taken));
  // The old holder neither takes it back by renewing nor removes it by releasing.
  await (held as Lease).renew();
  await (held as Lease).release();
  assert.ok('refused' in (await takeLease(a, 'auto', 60_000)), 'A took back a lease B holds');
  await (taken as Lease).release();
  assert.equal(await a.stat(leasePath), null);
});

test('on S3 with conditional writes: a pass on one node is refused while a pass on another holds the lease', async (t) => {
  const restore = emulateConditionalPuts();
  t.after(restore);
  const [a, b] = [nodeDriver('passes'), nodeDriver('passes')];
  t.after(() => {
    for (const d of [a, b]) d.destroy();
  });
  let during: Awaited<ReturnType<typeof runPass>> | undefined;
  const first = await runPass(a, new Collector(a), {
    graceMs: 60_000,
    deleteUntagged: false,
    dryRun: false,
    role: 'auto',
    log: quiet,
    beforeSweep: async () => {
      during = await runPass(b, new Collector(b), {
        graceMs: 60_000,
        deleteUntagged: false,
        dryRun: false,
        role: 'auto',
        log: quiet,
      });
    },
  });
  assert.ok(!('refused' in first), JSON.stringify(first));
  assert.ok(
    during && 'refused' in during && /another collector holds the lease/.test(during.refused),
    JSON.stringify(during),
  );
  // Released at the end: the other node's next pass runs.
  assert.ok(
    !(
      'refused' in
      (await runPass(b, new Collector(b), {
        graceMs: 60_000,
        deleteUntagged: false,
        dryRun: false,
        role: 'auto',
        log: quiet,
      }))
    ),
  );
});

test('on S3 without conditional writes (plain s3rver ignores If-None-Match): no lease, so auto collects nowhere', async (t) => {
  const d = nodeDriver('plain');
  t.after(() => d.destroy());
  assert.equal(await d.exclusiveCreate(), false);
  const r = await takeLease(d, 'auto', 60_000);
  assert.ok('refused' in r && /no conditional writes/.test(r.refused), JSON.stringify(r));
  assert.ok(!('refused' in (await takeLease(d, true, 60_000))), 'the configured collector collects');
});
