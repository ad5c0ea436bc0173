import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { metricCatalog, type BenchResults } from '../../bench/report.js';
import { PASSTHROUGH_METRICS } from '../../bench/passthrough.js';
import { S3_METRICS } from '../../bench/s3.js';
import { trustMetrics } from '../../bench/trust.js';
import { UI_METRICS } from '../../bench/ui.js';
import { KEYLESS_METRICS } from '../../bench/trust-keyless.js';
import { canRunGc, GC_METRICS, GC_SLUICE_ONLY } from '../../bench/gc.js';
import { CLI_METRICS } from '../../bench/cli.js';
import { EVENTS_METRICS } from '../../bench/events.js';
import { hasDocker } from '../helpers/dockerd.js';
import { needTools, run } from '../helpers/tools.js';

const runJs = fileURLToPath(new URL('../../bench/run.js', import.meta.url));

// Keeps the bench harness working in CI: one --quick run against Sluice and Distribution (and skopeo sync).
// It checks the shape of the results and request counts, never a speed: speed is for reading, not for asserting.
test('bench --quick writes a results file with every workload for both servers', async (t) => {
  if (!needTools(t, 'docker-registry', 'skopeo')) return;
  const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const out = join(dir, 'results.json');
  const r = await run(process.execPath, [runJs, '--quick', '--out', out], { timeoutMs: 480_000 });
  assert.equal(r.code, 0, `bench exited ${r.code}\n${r.stdout}\n${r.stderr}`);

  const results = JSON.parse(await readFile(out, 'utf8')) as BenchResults;
  assert.equal(results.quick, true);
  assert.ok(!Number.isNaN(Date.parse(results.date)), 'date is an ISO timestamp');
  assert.ok(results.machine.cores > 0 && results.machine.memoryBytes > 0);
  assert.match(results.machine.node, /^v\d+\./);
  assert.deepEqual(results.servers, { sluice: true, distribution: true });

  // The passthrough rows need two dockerds, the gc rows GNU time; without them those workloads are skipped.
  const expected = [
    ...metricCatalog([1, 16, 64]),
    ...S3_METRICS,
    ...(hasDocker() ? PASSTHROUGH_METRICS : []),
    ...trustMetrics([1, 16, 64]),
    ...KEYLESS_METRICS,
    ...(canRunGc() ? GC_METRICS : []),
    ...CLI_METRICS,
    ...EVENTS_METRICS,
    ...UI_METRICS,
  ].map((m) => m.id);
  assert.deepEqual(
    results.results.map((row) => row.id),
    expected,
    'every workload has a row, in order',
  );
  for (const row of results.results) {
    // Distribution 2.8.2 has no online collection: its column of those rows stays empty.
    // The web UI is Sluice's own (Distribution has none): only its column is filled.
    if (GC_SLUICE_ONLY.has(row.id) || row.id.startsWith('ui.')) {
      assert.equal(row.distribution, null, `${row.id} has no Distribution value`);
      assert.ok(typeof row.sluice === 'number' && Number.isFinite(row.sluice), `${row.id} has a Sluice median`);
      continue;
    }
    for (const server of ['sluice', 'distribution'] as const) {
      const v = row[server];
      // A difference of two RSS readings per blob may come out below zero at --quick's tiny scales.
      const floor = row.id.endsWith('.perblob') ? -Infinity : 0;
      assert.ok(
        typeof v === 'number' && Number.isFinite(v) && v >= floor,
        `${row.id} has a ${server} median (got ${v})`,
      );
      assert.equal(row.samples[server].length, results.rounds, `${row.id} has one ${server} sample per round`);
    }
    assert.ok(row.better === 'higher' || row.better === 'lower');
    // A ratio is left out only where Distribution's median is 0 (no upstream bytes on a warm pull).
    assert.ok(
      typeof row.ratio === 'number' || (row.ratio === null && row.distribution === 0),
      `${row.id} has a ratio (got ${row.ratio})`,
    );
  }
  // Request counts are behaviour, not speed: a re-sync where nothing moved reads no blob with either tool,
  // and Sluice's sends one HEAD per image and no manifest GET (the counting proxy saw them, so it works).
  const images = Number(results.sizes.syncRepositories) * Number(results.sizes.syncTags);
  assert.ok(images > 0, 'the sync sizes are recorded');
  const row = (id: string) => results.results.find((x) => x.id === id)!;
  assert.equal(row('sync.resync.get.blobs').sluice, 0);
  assert.equal(row('sync.resync.get.blobs').distribution, 0, 'skopeo sync read no blob on the re-sync');
  assert.equal(row('sync.resync.head').sluice, images, 'Sluice sent one HEAD per image on the re-sync');
  assert.equal(row('sync.resync.get.manifests').sluice, 0);
  // Every distinct byte on the upstream came at least once on the first sync, for both tools.
  assert.ok(
    row('sync.first.upstream').sluice! >= 0.99 && row('sync.first.upstream').distribution! >= 0.99,
    'the first sync read the whole upstream',
  );
  // Both collectors removed the same garbage: as many blobs left after each sweep, and the number the seed expects.
  if (canRunGc()) {
    const blobs = Number(results.sizes.gcBlobs);
    for (const id of ['gc.sweep.left', 'gc.untagged.left']) {
      assert.equal(row(id).sluice, row(id).distribution, `${id}: both collectors left the same blobs`);
      assert.ok(row(id).sluice! > 0 && row(id).sluice! < blobs, `${id}: some garbage went, the live blobs stayed`);
    }
    assert.ok(row('gc.untagged.left').sluice! < row('gc.sweep.left').sluice!, '-m removed the untagged images too');
    assert.match(r.stdout, /gc: manifest GET p99 during passes/);
  }
  // The same table goes to stdout.
  assert.match(r.stdout, /blob push, 1 blob, monolithic PUT/);
  assert.match(r.stdout, /cache: cold pull through the cache/);
  assert.match(r.stdout, /sync: first sync, all images/);
  assert.match(r.stdout, /s3: blob pull, 2 nodes at once, aggregate/);
  assert.match(r.stdout, /sync rows: the Distribution column is skopeo sync/);
  assert.match(r.stdout, /Distribution/);
});
