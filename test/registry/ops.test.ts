import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { filesystemOnly, startRegistry, testS3 } from '../helpers/registry.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { freePort, waitForHttp } from '../helpers/clients.js';
import { SLUICE_BIN } from '../helpers/sluice-cli.js';
import { assertIntact, errorOf, startSession, withDigest } from '../helpers/oci-http.js';
import { digestOf } from '../../src/oci/digest.js';
import { cannotMount, mountTmpfs } from '../storage/mounts.js';
import { Writable } from 'node:stream';
import { validateConfig } from '../../src/config/load.js';
import { buildRegistry } from '../../src/registry/server.js';

interface Served {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  exit: Promise<number | null>;
}

/** Spawns `node bin/sluice.js serve --addr 127.0.0.1:PORT --root DIR`, collecting its log lines. */
async function serveProcess(root: string, extra: string[] = []): Promise<Served> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [SLUICE_BIN, 'serve', '--addr', `127.0.0.1:${port}`, '--root', root, ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exit = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/healthz`, child);
  return { child, url, stdout: () => out, exit };
}

/** Runs `sluice serve ARGS` expecting it to stop by itself; kills it after `timeoutMs` (code null then). */
async function serveUntilExit(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [SLUICE_BIN, 'serve', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
  clearTimeout(timer);
  return { code, stderr };
}

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (await cond()) return;
    await sleep(5);
  }
  throw new Error(`gave up waiting for ${what}`);
}

function logLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return assert.fail(`log line is not JSON: ${l}`);
      }
    });
}

test('structured JSON logs: one line per request, without credentials', async () => {
  const root = await mkdtemp(join(tmpdir(), 'sluice-ops-'));
  const s = await serveProcess(root);
  try {
    const secret = 'c3VwZXI6c2VjcmV0LXBhc3N3b3Jk';
    await fetch(`${s.url}/v2/`, { headers: { authorization: `Basic ${secret}`, cookie: `session=${secret}` } });
    await fetch(`${s.url}/v2/ops/app/manifests/nope`, { headers: { authorization: `Bearer ${secret}` } });
    const v2 = () => logLines(s.stdout()).filter((l) => l.msg === 'request' && String(l.url).startsWith('/v2'));
    await until(() => v2().length >= 2, 'two request log lines');
    const requests = v2();
    // The readiness probe is logged like any request.
    assert.ok(logLines(s.stdout()).some((l) => l.msg === 'request' && l.url === '/healthz' && l.status === 200));
    assert.equal(requests.length, 2);
    assert.deepEqual(
      requests.map((l) => [l.method, l.url, l.status, l.route]),
      [
        ['GET', '/v2/', 200, 'base'],
        ['GET', '/v2/ops/app/manifests/nope', 404, 'manifest'],
      ],
    );
    for (const l of requests) {
      assert.equal(typeof l.ms, 'number');
      assert.equal(typeof l.level, 'number');
      assert.equal(typeof l.time, 'number');
    }
    assert.ok(!s.stdout().includes(secret), 'no credential in the logs');
    assert.ok(logLines(s.stdout()).some((l) => l.msg === 'sluice registry listening'));
  } finally {
    s.child.kill('SIGKILL');
    await s.exit;
    await rm(root, { recursive: true, force: true });
  }
});

test("a denied request's log line carries the code and the rule's reason", async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'sluice-ops-'));
  let logText = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      logText += chunk;
      cb();
    },
  });
  const { config } = validateConfig({
    storage: { filesystem: { rootdirectory: root } },
    access: {
      rules: [
        { name: 'no-secrets', repos: ['secret/**'], who: ['*'], deny: ['pull'] },
        { repos: ['**'], who: ['*'], allow: ['*'] },
      ],
    },
  });
  const reg = buildRegistry({ config, logger: { level: 'info', stream } });
  const url = await reg.app.listen({ host: '127.0.0.1', port: 0 });
  t.after(async () => {
    await reg.app.close();
    await rm(root, { recursive: true, force: true });
  });
  const r = await fetch(`${url}/v2/secret/app/manifests/v1`);
  assert.equal(r.status, 403);
  const told = await errorOf(r);
  await until(
    () => logLines(logText).some((l) => l.msg === 'request' && l.url === '/v2/secret/app/manifests/v1'),
    'the request log line',
  );
  const line = logLines(logText).find((l) => l.msg === 'request' && l.url === '/v2/secret/app/manifests/v1')!;
  assert.equal(line.code, 'DENIED');
  assert.equal(line.reason, told.message);
  assert.match(String(line.reason), /no-secrets/);
});

test('/healthz answers ok, and 503 when storage is unusable', async () => {
  const reg = await startRegistry();
  try {
    const r = await fetch(`${reg.url}/healthz`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { status: 'ok', storage: reg.storage });
  } finally {
    await reg.close();
  }
  // A root that is a file; on S3 its counterpart, a bucket that does not exist.
  const dir = await mkdtemp(join(tmpdir(), 'sluice-ops-'));
  const file = join(dir, 'not-a-dir');
  await writeFile(file, 'x');
  const bad =
    reg.storage === 's3'
      ? await startRegistry({ storage: { s3: (await testS3()).config(reg.root, { bucket: 'no-such-bucket' }) } })
      : await startRegistry({}, file);
  try {
    const r = await fetch(`${bad.url}/healthz`);
    assert.equal(r.status, 503);
    assert.equal(((await r.json()) as { status: string }).status, 'unavailable');
  } finally {
    await bad.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('/metrics: requests by route and status, bytes in and out, upload durations', async () => {
  const reg = await startRegistry();
  try {
    const img = await makeImage();
    await pushImage(reg.url, 'ops/metrics', 'v1', img);
    const loc = await startSession(reg.url, 'ops/metrics');
    const data = randomBytes(1234);
    await fetch(loc, { method: 'PATCH', body: data });
    assert.equal((await fetch(withDigest(loc, digestOf(data)), { method: 'PUT' })).status, 201);
    const layer = img.layers[0]!;
    await (await fetch(`${reg.url}/v2/ops/metrics/blobs/${layer.descriptor.digest}`)).arrayBuffer();
    await (await fetch(`${reg.url}/v2/ops/metrics/manifests/nope`)).arrayBuffer();
    const r = await fetch(`${reg.url}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type')!, /^text\/plain/);
    const text = await r.text();
    const value = (name: string, labels: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
      assert.ok(line, `${name}{${labels}} in\n${text.slice(0, 3000)}`);
      return Number(line.split(' ').pop());
    };
    assert.equal(value('sluice_http_requests_total', 'route="manifest",method="PUT",status="201"'), 1);
    assert.equal(value('sluice_http_requests_total', 'route="manifest",method="GET",status="404"'), 1);
    assert.equal(value('sluice_http_requests_total', 'route="uploads",method="POST",status="201"'), 2);
    assert.equal(value('sluice_http_requests_total', 'route="upload",method="PUT",status="201"'), 1);
    assert.equal(
      value('sluice_http_bytes_received_total', 'route="upload"'),
      img.config.bytes.length + layer.bytes.length + data.length,
    );
    assert.equal(value('sluice_http_bytes_received_total', 'route="manifest"'), img.manifest.length);
    assert.equal(value('sluice_http_bytes_sent_total', 'route="blob"'), layer.bytes.length);
    const count = text.split('\n').find((l) => l.startsWith('sluice_blob_upload_duration_seconds_count'));
    assert.equal(Number(count!.split(' ').pop()), 3);
  } finally {
    await reg.close();
  }
});

test('SIGTERM lets an in-flight chunked upload finish, then the process exits 0', async () => {
  const root = await mkdtemp(join(tmpdir(), 'sluice-ops-'));
  const s = await serveProcess(root);
  try {
    const loc = await startSession(s.url, 'ops/drain');
    const u = new URL(loc);
    const data = randomBytes(256 * 1024);
    const response = new Promise<{ status: number; range: string | undefined }>((resolve, reject) => {
      const req = request(
        {
          host: u.hostname,
          port: u.port,
          method: 'PATCH',
          path: u.pathname,
          headers: { 'content-type': 'application/octet-stream' },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, range: res.headers.range as string | undefined }));
        },
      );
      req.on('error', reject);
      // Half the body now (chunked, no Content-Length) ...
      req.write(data.subarray(0, 128 * 1024));
      // ... the rest only once the server has begun shutting down.
      until(() => s.stdout().includes('shutting down'), 'the shutdown log line').then(
        () => req.end(data.subarray(128 * 1024)),
        (e) => req.destroy(e as Error),
      );
    });
    // Wait until the server holds part of the chunk, so the request is truly in flight.
    const { stat } = await import('node:fs/promises');
    const dataFile = join(
      root,
      'docker/registry/v2/repositories/ops/drain/_uploads',
      u.pathname.split('/').pop()!,
      'data',
    );
    await until(async () => ((await stat(dataFile).catch(() => null))?.size ?? 0) > 0, 'part of the chunk on disk');
    s.child.kill('SIGTERM');
    const r = await response;
    assert.equal(r.status, 202);
    assert.equal(r.range, `0-${data.length - 1}`);
    assert.equal(await s.exit, 0);
    assert.equal((await stat(dataFile)).size, data.length);
  } finally {
    if (s.child.exitCode === null) s.child.kill('SIGKILL');
    await rm(root, { recursive: true, force: true });
  }
});

test('a request that never finishes does not hold shutdown past http.draintimeout (exit 1)', async () => {
  const root = await mkdtemp(join(tmpdir(), 'sluice-ops-'));
  const cfg = join(root, 'config.yml');
  await writeFile(cfg, 'http:\n  draintimeout: 300ms\n');
  const s = await serveProcess(join(root, 'data'), ['--config', cfg]);
  try {
    const loc = await startSession(s.url, 'ops/stuck');
    const u = new URL(loc);
    const req = request({ host: u.hostname, port: u.port, method: 'PATCH', path: u.pathname });
    req.on('error', () => undefined);
    req.write(Buffer.alloc(1000));
    const dataFile = join(
      root,
      'data/docker/registry/v2/repositories/ops/stuck/_uploads',
      u.pathname.split('/').pop()!,
      'data',
    );
    const { stat } = await import('node:fs/promises');
    await until(async () => ((await stat(dataFile).catch(() => null))?.size ?? 0) > 0, 'part of the chunk on disk');
    s.child.kill('SIGTERM');
    assert.equal(await s.exit, 1);
    assert.match(s.stdout(), /still in flight after http.draintimeout/);
    req.destroy();
  } finally {
    if (s.child.exitCode === null) s.child.kill('SIGKILL');
    await rm(root, { recursive: true, force: true });
  }
});

test("sluice serve runs from Debian's Distribution config.yml (paths adjusted, auth left out) with its headers and deletion", async (t) => {
  const { existsSync } = await import('node:fs');
  const { readFile } = await import('node:fs/promises');
  const debian = '/etc/docker/registry/config.yml';
  if (!existsSync(debian)) return t.skip(`${debian} not present (apt-get install docker-registry)`);
  const root = await mkdtemp(join(tmpdir(), 'sluice-ops-'));
  const text = (await readFile(debian, 'utf8'))
    .replace('/var/lib/docker-registry', join(root, 'data'))
    .replace(/^auth:\n(?:[ \t]+.*\n)*/m, '');
  assert.ok(!text.includes('htpasswd'));
  const cfg = join(root, 'config.yml');
  await writeFile(cfg, text);
  const s = await serveProcess(join(root, 'data'), ['--config', cfg]);
  try {
    const img = await makeImage();
    await pushImage(s.url, 'debian/conf', 'v1', img);
    const r = await fetch(`${s.url}/v2/debian/conf/manifests/v1`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    // storage.delete.enabled: true in Debian's file.
    assert.equal((await fetch(`${s.url}/v2/debian/conf/manifests/${img.digest}`, { method: 'DELETE' })).status, 202);
    assert.ok(!/unknown config key/.test(s.stdout()), s.stdout());
  } finally {
    s.child.kill('SIGTERM');
    assert.equal(await s.exit, 0);
    await rm(root, { recursive: true, force: true });
  }
});

test('sluice serve refuses a storage root it cannot write, with one line naming the key, the path and why', async (t) => {
  if (filesystemOnly(t, 'a read-only tmpfs mount as the root')) return;
  const ro = await mountTmpfs('ro');
  if (!ro) return t.skip(cannotMount);
  try {
    for (const root of [ro.dir, join(ro.dir, 'data')]) {
      const r = await serveUntilExit(['--addr', `127.0.0.1:${await freePort()}`, '--root', root]);
      assert.equal(r.code, 1, `sluice serve on ${root} did not stop by itself: ${r.stderr}`);
      assert.equal(r.stderr, `sluice: storage.filesystem.rootdirectory: ${root} is not writable (EROFS)\n`);
    }
  } finally {
    await ro.unmount();
  }
});

test('a read-only registry starts on an unwritable root and serves what is there', async (t) => {
  if (filesystemOnly(t, 'a tmpfs mount remounted read-only under the root')) return;
  const mount = await mountTmpfs('size=16m');
  if (!mount) return t.skip(cannotMount);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-ops-'));
  let s: Served | undefined;
  try {
    const writer = await startRegistry({}, mount.dir);
    const img = await makeImage();
    try {
      await pushImage(writer.url, 'ro/app', 'v1', img);
    } finally {
      await writer.close();
    }
    await mount.remount('ro');
    const cfg = join(dir, 'config.yml');
    await writeFile(cfg, 'storage:\n  maintenance:\n    readonly:\n      enabled: true\n');
    s = await serveProcess(mount.dir, ['--config', cfg]);
    const health = await fetch(`${s.url}/healthz`);
    assert.equal(health.status, 200, await health.text());
    await assertIntact(s.url, 'ro/app', 'v1', img);
    const push = await fetch(`${s.url}/v2/ro/app/blobs/uploads/`, { method: 'POST' });
    assert.equal((await errorOf(push)).code, 'UNSUPPORTED');
  } finally {
    if (s) {
      s.child.kill('SIGKILL');
      await s.exit;
    }
    await mount.unmount();
    await rm(dir, { recursive: true, force: true });
  }
});

test('/healthz turns 503 within seconds when the root stops taking writes, and 200 again when it does', async (t) => {
  if (filesystemOnly(t, 'a tmpfs mount remounted read-only under the root')) return;
  const mount = await mountTmpfs('size=4m');
  if (!mount) return t.skip(cannotMount);
  const reg = await startRegistry({}, mount.dir);
  try {
    const health = async () => {
      const r = await fetch(`${reg.url}/healthz`);
      return { status: r.status, body: (await r.json()) as { status: string; error?: string } };
    };
    assert.equal((await health()).status, 200);
    await mount.remount('ro');
    // The probe runs at most every 5 s: within 8 s the answer must have turned.
    let h = await health();
    for (let i = 0; i < 80 && h.status === 200; i++) {
      await sleep(100);
      h = await health();
    }
    assert.equal(h.status, 503);
    assert.deepEqual(h.body, {
      status: 'unavailable',
      error: `storage.filesystem.rootdirectory: ${mount.dir} is not writable (EROFS)`,
    });
    await mount.remount('rw');
    for (let i = 0; i < 80 && h.status === 503; i++) {
      await sleep(100);
      h = await health();
    }
    assert.equal(h.status, 200);
  } finally {
    await reg.close();
    await mount.unmount();
  }
});
