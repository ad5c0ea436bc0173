// Finds the compiled tests and hands them to node's test runner (Node 20 has no glob arguments).
import { readdirSync, statSync } from 'node:fs';
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
const r = spawnSync(process.execPath, ['--import', guard, '--test', `--test-concurrency=${concurrency}`, ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
