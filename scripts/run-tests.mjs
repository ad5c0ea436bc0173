// Finds the compiled tests and hands them to node's test runner (Node 20 has no glob arguments).
// The registry, cache, mirror-job and garbage-collection tests then run a second time with SLUICE_TEST_STORAGE=s3 (every test registry
// on an in-process S3 server); SLUICE_TEST_S3_PASS=0 leaves that pass out.
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const filter = process.argv.slice(2);
function collect(dir, out) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) collect(p, out);
    else if (e.name.endsWith('.test.js')) out.push(relative(root, p));
  }
  return out;
}
let files = collect(join(root, 'dist', 'test'), []).sort();
if (filter.length) files = files.filter((f) => filter.some((x) => f.includes(x)));
const concurrency = process.env.SLUICE_TEST_CONCURRENCY ?? '2';
// Every test process fails on an unhandled rejection or uncaught exception (see the module's comment).
const guard = join(root, 'dist', 'test', 'helpers', 'fail-on-unhandled.js');

// The runner's usual output (spec on a terminal, TAP otherwise), plus each file's time, printed after each pass.
const mainReporter = process.stdout.isTTY ? 'spec' : 'tap';
const timesReporter = join(root, 'scripts', 'file-times-reporter.mjs');
const timesDir = mkdtempSync(join(tmpdir(), 'sluice-test-times-'));
let passes = 0;

/** Runs test files in node's runner, then prints their times; returns its exit status. */
function runFiles(list, env = {}) {
  if (list.length === 0) return 0;
  const times = join(timesDir, `pass${++passes}.txt`);
  const reporters = [`--test-reporter=${mainReporter}`, '--test-reporter-destination=stdout'];
  reporters.push(`--test-reporter=${timesReporter}`, `--test-reporter-destination=${times}`);
  const args = ['--import', guard, '--test', `--test-concurrency=${concurrency}`, ...reporters, ...list];
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  try {
    process.stdout.write(`\n${readFileSync(times, 'utf8')}`);
  } catch {
    // The runner died before its reporters finished: its own output says why.
  }
  return r.status ?? 1;
}

// Registry test files that start no registry through test/helpers/registry.ts, so the S3 pass would
// only repeat them: config parsing, and TLS (its own starter; storage plays no part).
const NOT_STORAGE = ['dist/test/registry/config.test.js', 'dist/test/registry/tls.test.js'];

let status = runFiles(files);
if (process.env.SLUICE_TEST_S3_PASS !== '0') {
  // The cache's fills write upload sessions and read them while they grow: the part S3 changes most.
  // Mirror jobs write images, tags and their state into the registry's storage (a builder mirroring into the bucket).
  // The collector must keep what is in use and delete what is not on a bucket as on a folder.
  const onS3 = (f) =>
    /^dist\/test\/(registry\/|proxy\/cache|sync\/mirror\.test|gc\/)/.test(f) && !NOT_STORAGE.includes(f);
  const s3Files = files.filter(onS3);
  if (s3Files.length) {
    process.stdout.write(
      `\n# the registry, cache, mirror-job and gc tests again on S3 (SLUICE_TEST_STORAGE=s3): ${s3Files.length} files\n`,
    );
    const started = Date.now();
    const s3Status = runFiles(s3Files, { SLUICE_TEST_STORAGE: 's3' });
    process.stdout.write(
      `# S3 pass: ${((Date.now() - started) / 1000).toFixed(0)} s, ${s3Status === 0 ? 'passed' : 'failed'}\n`,
    );
    if (status === 0) status = s3Status;
  }
}
process.exit(status);
