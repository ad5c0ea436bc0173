import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { run, runOk } from '../helpers/tools.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

test('no runtime dependency requires a newer Node than 20', async () => {
  const r = await runOk('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: repo });
  const dirs = r.stdout.split('\n').filter(Boolean).slice(1);
  assert.ok(dirs.length > 10, 'npm ls listed the dependency tree');
  const { readFile } = await import('node:fs/promises');
  const tooNew: string[] = [];
  for (const d of dirs) {
    const pj = JSON.parse(await readFile(join(d, 'package.json'), 'utf8')) as {
      name: string;
      version: string;
      engines?: { node?: string };
    };
    const range = pj.engines?.node;
    // 20.19 is the oldest 20.x that every chosen major supports (undici 7 needs 20.18.1).
    if (range && !semver.satisfies('20.19.0', range)) tooNew.push(`${pj.name}@${pj.version} needs node ${range}`);
  }
  assert.deepEqual(tooNew, []);
});

test('a first build compiles once: the prepare step leaves nothing for ensure-built to redo', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-build-'));
  try {
    for (const p of ['src', 'test', 'bench', 'web', 'scripts', 'package.json', 'tsconfig.json', 'tsconfig.web.json'])
      await cp(join(repo, p), join(dir, p), { recursive: true });
    await symlink(join(repo, 'node_modules'), join(dir, 'node_modules'));
    // What `npm ci` runs as the package's prepare script.
    await runOk('npm', ['run', '--silent', 'prepare'], { cwd: dir });
    const stamp = (await stat(join(dir, 'dist', '.built'))).mtimeMs;
    const again = await run(process.execPath, [join(dir, 'scripts', 'ensure-built.mjs')], { cwd: dir });
    assert.equal(again.code, 0, again.stderr);
    assert.equal((await stat(join(dir, 'dist', '.built'))).mtimeMs, stamp, 'ensure-built compiled a second time');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
