import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { canZstd } from '../../src/copy/compress.js';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { scratch } from '../helpers/clients.js';
import { startRegistry } from '../helpers/registry.js';
import { SLUICE_BIN, sluice } from '../helpers/sluice-cli.js';
import { assertIntact } from '../helpers/oci-http.js';

/** Asserts a failed command said one `sluice: …` line and no stack trace. */
function assertOneLine(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^sluice: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
}

test('bad option values get one line and exit 1, never a stack trace', async () => {
  const cases: [string[], RegExp][] = [
    [['copy', '-j', 'abc', 'oci:a', 'oci:b'], /--jobs.*'abc' is invalid/],
    [['copy', '-j', '0', 'oci:a', 'oci:b'], /--jobs.*'0' is invalid/],
    [['copy', '--retry-times', '-1', 'oci:a', 'oci:b'], /--retry-times.*'-1' is invalid/],
    [['copy', '--dest-chunk-size', 'lots', 'oci:a', 'oci:b'], /--dest-chunk-size.*'lots' is invalid.*5MiB/],
    [['copy', '--dest-chunk-size', '0', 'oci:a', 'oci:b'], /--dest-chunk-size.*'0' is invalid/],
    [['copy', '--tls-verify=maybe', 'oci:a', 'oci:b'], /--tls-verify.*'maybe' is invalid/],
    [['copy', '--src-tls-verify=2', 'oci:a', 'oci:b'], /--src-tls-verify.*'2' is invalid/],
    [['copy', '--platform', 'linux', 'oci:a', 'oci:b'], /--platform.*invalid platform "linux"/],
    [['copy', '--dest-compress-format', 'brotli', 'oci:a', 'oci:b'], /gzip, zstd or none/],
    [['copy', '--no-such-flag', 'oci:a', 'oci:b'], /unknown option '--no-such-flag'/],
    [['inspect', '--retry-times', 'x', 'oci:a'], /--retry-times.*'x' is invalid/],
    [['tags', '--retry-times', '1.5', 'oci:a'], /--retry-times.*'1.5' is invalid/],
    [['tags', '--tls-verify=nope', 'oci:a'], /--tls-verify.*'nope' is invalid/],
  ];
  if (!canZstd())
    cases.push([['copy', '--dest-compress-format', 'zstd', 'oci:a', 'oci:b'], /zstd needs Node\.js 22\.15/]);
  for (const [args, pattern] of cases) assertOneLine(await sluice(args), pattern);
});

test('bare --tls-verify means true and takes no argument; --tls-verify=false and the older "--tls-verify false" work', async () => {
  const s = await scratch();
  try {
    const img = await makeImage({ label: 'tls-flag' });
    await writeOciLayout(join(s.dir, 'src'), [{ tag: 'v1', image: img }]);
    // Before: commander took the source reference as the flag's value.
    for (const flags of [
      ['--tls-verify'],
      ['--src-tls-verify', '--dest-tls-verify'],
      ['--tls-verify=false'],
      ['--tls-verify', 'false'],
      ['--tls-verify=true'],
    ]) {
      const r = await sluice(['copy', '-q', ...flags, `oci:${s.dir}/src:v1`, `oci:${s.dir}/dst:v1`]);
      assert.equal(r.code, 0, `${flags.join(' ')}: ${r.stderr}`);
    }
    const inspected = await sluice(['inspect', '--tls-verify', `oci:${s.dir}/dst:v1`]);
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.equal((JSON.parse(inspected.stdout) as { Digest: string }).Digest, img.digest);
  } finally {
    await s.cleanup();
  }
});

test('--tls-verify=false allows plain HTTP to a registry named by host name; bare --tls-verify insists on TLS', async (t) => {
  // A name that is not a loopback literal (so TLS applies) but reaches this machine.
  const name = hostname();
  const addr = await lookup(name, { family: 4 }).catch(() => undefined);
  if (addr?.address !== '127.0.0.1' || name === 'localhost') {
    t.skip(`the host name ${name} does not resolve to 127.0.0.1`);
    return;
  }
  const reg = await startRegistry();
  const s = await scratch();
  try {
    const img = await makeImage({ label: 'tls-semantics' });
    await writeOciLayout(join(s.dir, 'src'), [{ tag: 'v1', image: img }]);
    const port = new URL(reg.url).port;
    const up = await sluice([
      'copy',
      '-q',
      '--dest-tls-verify=false',
      `oci:${s.dir}/src:v1`,
      `docker://${name}:${port}/app:v1`,
    ]);
    assert.equal(up.code, 0, up.stderr);
    await assertIntact(reg.url, 'app', 'v1', img);
    const plain = await sluice(['tags', '--tls-verify=false', `docker://${name}:${port}/app`]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout, 'v1\n');
    for (const flags of [['--tls-verify'], ['--tls-verify=true'], []]) {
      const r = await sluice(['tags', ...flags, `docker://${name}:${port}/app`]);
      assert.equal(r.code, 1, `${flags.join(' ') || 'no flag'} must not fall back to plain HTTP`);
      assertOneLine(r, /TLS failed.*plain HTTP, which --tls-verify=false allows/);
    }
  } finally {
    await s.cleanup();
    await reg.close();
  }
});

test('--dest-chunk-size takes bytes or units: 1k is 1024 bytes, 2kB is 2000', async () => {
  const s = await scratch();
  const reg = await startRegistry();
  const target = new URL(reg.url);
  const patches: number[] = [];
  // Counts PATCH bodies on their way to a real registry.
  const proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'PATCH') patches.push(Number(req.headers['content-length']));
    const up = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    req.pipe(up);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  const port = (proxy.address() as { port: number }).port;
  try {
    // Random bytes do not compress: the layer stays near 5000 bytes.
    const img = await makeImage({ layers: [{ 'noise.bin': randomBytes(5000) }], label: 'chunks' });
    const layer = img.layers[0]!.descriptor.size;
    await writeOciLayout(join(s.dir, 'src'), [{ tag: 'v1', image: img }]);
    for (const [size, each, repo] of [
      ['1k', 1024, 'a'],
      ['2kB', 2000, 'b'],
    ] as const) {
      patches.length = 0;
      const r = await sluice([
        'copy',
        '-q',
        '--dest-chunk-size',
        size,
        `oci:${s.dir}/src:v1`,
        `docker://127.0.0.1:${port}/${repo}:v1`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const layerChunks = patches.filter((n) => n === each);
      assert.equal(layerChunks.length, Math.floor(layer / each), `${size}: PATCH sizes ${patches.join(', ')}`);
      await assertIntact(reg.url, repo, 'v1', img);
    }
  } finally {
    proxy.close();
    await reg.close();
    await s.cleanup();
  }
});

/** Runs sluice with its stdout already closed, as `| head -1` leaves it once head has its line. */
function withClosedStdout(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SLUICE_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

test('sluice tags oci:DIR lists the names in the layout, and output into a closed pipe ends quietly', async () => {
  const s = await scratch();
  try {
    const a = await makeImage({ label: 'names-a' });
    const b = await makeImage({ label: 'names-b' });
    const dir = join(s.dir, 'layout');
    await writeOciLayout(dir, [
      { tag: 'v1', image: a },
      { tag: 'v2', image: b },
      { tag: 'latest', image: b },
    ]);
    const r = await sluice(['tags', `oci:${dir}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trimEnd().split('\n'), ['v1', 'v2', 'latest']);
    const json = await sluice(['tags', '--json', `oci:${dir}`]);
    assert.deepEqual((JSON.parse(json.stdout) as { Tags: string[] }).Tags, ['v1', 'v2', 'latest']);

    // Copying from the layout still needs a name when it holds several images.
    const ambiguous = await sluice(['copy', `oci:${dir}`, `oci:${s.dir}/out`]);
    assertOneLine(ambiguous, /holds 2 images: name one/);

    for (const args of [
      ['tags', `oci:${dir}`],
      ['inspect', `oci:${dir}:v1`],
      ['inspect', '--raw', `oci:${dir}:v1`],
    ]) {
      const closed = await withClosedStdout(args);
      assert.equal(closed.code, 0, `${args.join(' ')}: ${closed.stderr}`);
      assert.equal(closed.stderr, '', args.join(' '));
    }
  } finally {
    await s.cleanup();
  }
});
