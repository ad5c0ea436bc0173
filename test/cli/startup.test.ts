import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeImage, pushImage } from '../helpers/images.js';
import { scratch } from '../helpers/clients.js';
import { startRegistry } from '../helpers/registry.js';
import { SLUICE_BIN, startSluiceProcess } from '../helpers/sluice-cli.js';
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

/**
 * What `sluice serve` loads only when a config block asks for it (issue 22), by path prefix: the S3 SDK (s3
 * storage), the collector (`storage.gc`, `retention:`), the events journal (`notifications:`), mirror jobs
 * (`mirrors:`), signatures (`trust:`), the pull-through cache (`upstreams:`, `proxy:`) and what those bring
 * (the copy engine, the registry client and undici, croner, sigstore).
 */
const CONFIGURED_ONLY = [
  'node_modules/@aws-sdk/',
  'node_modules/@smithy/',
  'node_modules/@sigstore/',
  'node_modules/croner/',
  'node_modules/undici/',
  'dist/src/gc/',
  'dist/src/policy/retention.js',
  'dist/src/events/',
  'dist/src/sync/',
  'dist/src/sign/',
  'dist/src/proxy/',
  'dist/src/copy/',
  'dist/src/upstream/upstreams.js',
  'dist/src/transport/docker.js',
  'dist/src/transport/registry-',
  'dist/src/registry/trust-setup.js',
  'dist/src/registry/cache-',
  'dist/src/registry/sync-setup.js',
  'dist/src/registry/gc-setup.js',
  'dist/src/registry/events-setup.js',
];
/**
 * Files under those prefixes every server needs: the config schemas of each section (the config is strict,
 * so every key is known), the claims a push takes against the collector, and the pull times recorded by
 * default (`storage.gc.pulls`, on unless disabled).
 */
const ALWAYS = new Set(
  [
    'gc/config.js',
    'gc/claim.js',
    'gc/paths.js',
    'gc/records.js',
    'gc/pulls.js',
    'gc/pulls-config.js',
    'gc/pull-recorder.js',
    'events/config.js',
    'events/types.js',
    'sync/config.js',
  ].map((f) => `dist/src/${f}`),
);

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

test('--help into a pipe is the help of the program itself, byte for byte, without loading commander or any command', async () => {
  const { version } = JSON.parse(await readFile(PACKAGE, 'utf8')) as { version: string };
  const { buildProgram } = await import('../../src/cli/commands.js');
  const { TOP_HELP } = await import('../../src/cli/top-help.js');
  const own = (await buildProgram(version)).helpInformation();
  assert.equal(TOP_HELP, own, `src/cli/top-help.ts is stale; the program's help is now:\n${own}`);
  for (const args of [['--help'], ['-h'], ['help']]) {
    const r = await traced(args);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, own, args.join(' '));
    assert.deepEqual(packagesAmong(r.loaded, ['commander', ...HEAVY]), [], args.join(' '));
    assert.deepEqual(
      r.loaded.filter((f) => /\/dist\/src\/cli\/(?!main|top-help|fail)/.test(f)),
      [],
      `${args.join(' ')} loads only main.js, fail.js and top-help.js of the CLI`,
    );
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

test('serve with the default config loads none of the parts a config block turns on', async (t) => {
  const s = await scratch('sluice-serve-trace-');
  t.after(() => s.cleanup());
  const out = join(s.dir, 'loaded.txt');
  const server = await startSluiceProcess(join(s.dir, 'root'), {
    nodeArgs: ['--import', TRACE],
    env: { SLUICE_TEST_LOAD_TRACE: out },
  });
  await server.stop();
  const loaded = [...new Set((await readFile(out, 'utf8')).split('\n').filter(Boolean))];
  // The trace saw the server start and answer, or an empty list would pass.
  for (const f of ['dist/src/registry/server.js', 'node_modules/fastify/', 'dist/src/ui/install.js'])
    assert.ok(
      loaded.some((l) => l.includes(f)),
      `the trace has ${f}`,
    );
  const optional = loaded.filter((l) => {
    const at = CONFIGURED_ONLY.find((p) => l.includes(`/${p}`));
    return at !== undefined && ![...ALWAYS].some((a) => l.endsWith(`/${a}`));
  });
  assert.deepEqual(optional, []);
});
