import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { emulateConditionalPuts } from '../helpers/s3-conditional.js';
import { freePort, scratch } from '../helpers/clients.js';
import { SLUICE_BIN, sluice } from '../helpers/sluice-cli.js';

let s3: TestS3;
let work: { dir: string; cleanup: () => Promise<void> };

before(async () => {
  s3 = await startS3('reg');
  work = await scratch('sluice-s3-start-');
});

after(async () => {
  await s3.close();
  await work.cleanup();
});

const IMMUTABLE_RULES = {
  rules: [
    { repos: ['rel/**:v*'], who: ['*'], deny: ['overwrite'] },
    { repos: ['**'], who: ['*'], allow: ['pull', 'push'] },
  ],
};

let configs = 0;
/** Writes a config file (JSON is YAML) for `sluice serve` on the test S3 server; `storage` adds keys beside s3. */
async function configFile(
  opts: { s3?: Record<string, unknown>; storage?: Record<string, unknown>; access?: unknown } = {},
): Promise<string> {
  const file = join(work.dir, `config-${++configs}.yml`);
  const storage = { s3: s3.config('/start/root/', opts.s3), ...opts.storage };
  await writeFile(
    file,
    JSON.stringify({ log: { level: 'info' }, storage, ...(opts.access ? { access: opts.access } : {}) }),
  );
  return file;
}

/** Runs `sluice serve` until it logs that it listens (or exits), and returns its JSON log lines so far. */
async function startLines(config: string): Promise<{ lines: Record<string, unknown>[]; stderr: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [SLUICE_BIN, 'serve', '--addr', `127.0.0.1:${port}`, '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const lines: Record<string, unknown>[] = [];
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  for await (const line of createInterface({ input: child.stdout })) {
    lines.push(JSON.parse(line) as Record<string, unknown>);
    if (lines.at(-1)!['msg'] === 'sluice registry listening') break;
  }
  clearTimeout(timer);
  child.kill('SIGTERM');
  await exited;
  return { lines, stderr };
}

test('sluice serve on S3 logs the bucket, key prefix and endpoint at start, and no filesystem root', async () => {
  const { lines, stderr } = await startLines(await configFile());
  const listening = lines.find((l) => l['msg'] === 'sluice registry listening');
  assert.ok(listening, stderr);
  assert.equal(listening['storage'], 's3');
  assert.equal(listening['bucket'], 'reg');
  assert.equal(listening['prefix'], 'start/root');
  assert.equal(listening['endpoint'], s3.endpoint);
  assert.equal(listening['root'], undefined);
});

test('sluice serve refuses to start on S3 without conditional writes when an access rule denies overwrite', async () => {
  const r = await sluice([
    'serve',
    '--addr',
    `127.0.0.1:${await freePort()}`,
    '--config',
    await configFile({ access: IMMUTABLE_RULES }),
  ]);
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    /rule 1 makes tags immutable \(deny: \[overwrite\]\), but storage\.s3: s3:\/\/reg\/start\/root does not honour conditional writes/,
  );
  assert.match(r.stderr, /set storage\.s3\.immutabletags: besteffort to accept that/);
});

test('sluice serve with storage.s3.immutabletags: besteffort starts on such a server and warns of the race', async () => {
  const { lines, stderr } = await startLines(
    await configFile({ s3: { immutabletags: 'besteffort' }, access: IMMUTABLE_RULES }),
  );
  assert.ok(
    lines.some((l) => l['msg'] === 'sluice registry listening'),
    stderr,
  );
  const warning = lines.find((l) => String(l['msg']).includes('makes tags immutable'));
  assert.ok(warning, JSON.stringify(lines));
  assert.match(String(warning['msg']), /accepted: storage\.s3\.immutabletags is "besteffort"/);
});

test('sluice serve with an access rule that denies overwrite starts without a warning where the server honours conditional writes', async () => {
  const restore = emulateConditionalPuts();
  try {
    const { lines, stderr } = await startLines(await configFile({ access: IMMUTABLE_RULES }));
    assert.ok(
      lines.some((l) => l['msg'] === 'sluice registry listening'),
      stderr,
    );
    assert.equal(lines.filter((l) => String(l['msg']).includes('immutable')).length, 0);
  } finally {
    restore();
  }
});

test('a read-only node with an access rule that denies overwrite starts on a server without conditional writes (it creates no tags)', async () => {
  const readonly = { maintenance: { readonly: { enabled: true } } };
  const { lines, stderr } = await startLines(await configFile({ storage: readonly, access: IMMUTABLE_RULES }));
  assert.ok(
    lines.some((l) => l['msg'] === 'sluice registry listening'),
    stderr,
  );
});
