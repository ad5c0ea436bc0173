import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeImage, pushImage } from '../helpers/images.js';
import { scratch } from '../helpers/clients.js';
import { startRegistry } from '../helpers/registry.js';
import { SLUICE_BIN } from '../helpers/sluice-cli.js';
import { run, type RunResult } from '../helpers/tools.js';

// Start-up (issue 22): a command loads what it needs when it runs. These tests read which files a run
// loaded (test/helpers/load-trace.ts) and check the ones that cost most are not among them.

const TRACE = fileURLToPath(new URL('../helpers/load-trace.js', import.meta.url));
const PACKAGE = fileURLToPath(new URL('../../../package.json', import.meta.url));
const COMMANDS = [
  'serve',
  'copy',
  'inspect',
  'tags',
  'sync',
  'key',
  'sign',
  'verify',
  'robot',
  'policy',
  'passthrough',
  'gc',
  'du',
  'fsck',
  'events',
];
/** Packages no help text needs: the config schema and its YAML, the server, HTTP client, S3, signatures, metrics. */
const HEAVY = [
  'zod',
  'yaml',
  'fastify',
  'undici',
  '@aws-sdk',
  '@sigstore',
  'jose',
  'prom-client',
  'semver',
  'tar-stream',
  'pino',
];

/** Runs `sluice ARGS` and returns its result and every file it loaded. */
async function traced(args: string[]): Promise<RunResult & { loaded: string[] }> {
  const s = await scratch('sluice-trace-');
  try {
    const out = join(s.dir, 'loaded.txt');
    const r = await run(process.execPath, ['--import', TRACE, SLUICE_BIN, ...args], {
      env: { SLUICE_TEST_LOAD_TRACE: out },
    });
    const loaded = [...new Set((await readFile(out, 'utf8').catch(() => '')).split('\n').filter(Boolean))];
    return { ...r, loaded };
  } finally {
    await s.cleanup();
  }
}

/** The packages of node_modules among `loaded` that `names` lists. */
function packagesAmong(loaded: string[], names: string[]): string[] {
  const found = new Set<string>();
  for (const f of loaded) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f);
    if (!m) continue;
    const pkg = m[1]!;
    for (const n of names) if (pkg === n || pkg.startsWith(`${n}/`)) found.add(pkg);
  }
  return [...found].sort();
}

test('--version prints the package version without loading the argument parser', async () => {
  const { version } = JSON.parse(await readFile(PACKAGE, 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = await traced([flag]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${version}\n`);
    assert.deepEqual(packagesAmong(r.loaded, ['commander', ...HEAVY]), [], `${flag} loaded only main.js and fail.js`);
  }
});

test('--help lists every command and loads none of the heavy packages', async () => {
  const r = await traced(['--help']);
  assert.equal(r.code, 0, r.stderr);
  for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`^  ${c}\\b`, 'm'), `help lists ${c}`);
  assert.deepEqual(packagesAmong(r.loaded, HEAVY), []);
  // No part of the registry, storage, config loading or signing either.
  const parts = r.loaded.filter((f) =>
    /\/dist\/src\/(registry|storage|sign|config\/load|proxy|sync|gc|events)/.test(f),
  );
  assert.deepEqual(parts, []);
});

test('a command with subcommands shows its help without loading the config schema', async () => {
  for (const c of ['robot', 'policy', 'sync', 'gc', 'du', 'fsck', 'events']) {
    const r = await traced([c, '--help']);
    assert.equal(r.code, 0, `${c}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: sluice ${c}`, 'm'));
    assert.deepEqual(packagesAmong(r.loaded, HEAVY), [], `sluice ${c} --help`);
  }
});

test('inspect of a registry image loads undici piecemeal, and no archive, bucket or config code', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const img = await makeImage({ label: 'startup' });
  await pushImage(reg.url, 'start/up', 'v1', img);
  const r = await traced(['inspect', '--no-tags', `docker://${reg.host}/start/up:v1`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { Digest: string }).Digest, img.digest);
  assert.ok(
    r.loaded.some((f) => f.includes('/node_modules/undici/lib/dispatcher/agent.js')),
    'undici is used',
  );
  // undici's index.js pulls in fetch, WebSocket, mocks and caches: over a hundred files a registry client never uses.
  assert.ok(!r.loaded.some((f) => /\/node_modules\/undici\/index\.js$/.test(f)), 'undici/index.js is not loaded');
  assert.deepEqual(
    packagesAmong(r.loaded, ['tar-stream', '@aws-sdk', 'zod', 'yaml', 'fastify', '@sigstore', 'prom-client']),
    [],
  );
});
