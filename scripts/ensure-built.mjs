// Lets `npm start` and `npm test` be the first commands after a clone: install and build on demand,
// compiling once (npm ci's `prepare` builds; a later run rebuilds only when a source is newer).
import { existsSync, statSync, readdirSync } from 'node:fs';
import { execSync } from 'node:child_process';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit' });

function newest(dir) {
  let t = 0;
  if (!existsSync(dir)) return t;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

if (!existsSync(join(root, 'node_modules', '.package-lock.json'))) {
  run('npm ci --no-audit --no-fund');
}
const built = join(root, 'dist', '.built');
const sources = Math.max(
  newest(join(root, 'src')),
  newest(join(root, 'test')),
  newest(join(root, 'bench')),
  newest(join(root, 'web')),
);
if (!existsSync(built) || statSync(built).mtimeMs < sources) run('node scripts/build.mjs');
