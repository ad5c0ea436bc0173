#!/usr/bin/env node
// A local S3-compatible server for trying and developing Sluice on S3: OpenStack Swift with its s3api, from
// Debian's packages (swift swift-proxy swift-object swift-container swift-account memcached), one replica,
// on 127.0.0.1. It needs nothing of Sluice and no npm package. The tests start it through this module too
// (test/helpers/swift.ts), so what is documented is what is tested.
//
//   node scripts/s3-dev.mjs [--bucket NAME] [--port PORT] [--dir DIR]
//
// prints the `storage.s3` block to paste into a Sluice config and runs until Ctrl-C. Without --dir the data
// lives in a fresh temporary directory, removed at exit; with --dir it is kept there for the next start.
import { spawn, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

/** Debian's Swift runs under Debian's Python, whatever `python3` is first on PATH. */
const PYTHON = '/usr/bin/python3';

/** The S3 keys: tempauth users `test:builder` (account admin) and `test:reader` (granted read and list of the bucket). */
export const KEYS = {
  builder: { accesskey: 'test:builder', secretkey: 'builderpass' },
  reader: { accesskey: 'test:reader', secretkey: 'readerpass' },
};

/** Whether Debian's swift servers (with s3api) and memcached (tempauth keeps tokens there) are installed. */
export function hasSwift() {
  return ['/usr/bin/swift-proxy-server', '/usr/bin/swift-object-server', '/usr/bin/memcached', PYTHON].every((p) =>
    existsSync(p),
  );
}

/** A free TCP port on 127.0.0.1. */
function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** The [DEFAULT] section every server shares: one process, on 127.0.0.1:port, configs in <dir>/etc. */
function defaults(port, dir) {
  return [
    '[DEFAULT]',
    'bind_ip = 127.0.0.1',
    `bind_port = ${port}`,
    'workers = 0',
    `swift_dir = ${join(dir, 'etc')}`,
    'log_level = WARNING',
  ];
}

function serverConf(kind, port, dir) {
  return [
    ...defaults(port, dir),
    `devices = ${join(dir, 'srv')}`,
    'mount_check = false',
    '[pipeline:main]',
    `pipeline = ${kind}-server`,
    `[app:${kind}-server]`,
    `use = egg:swift#${kind}`,
    '',
  ].join('\n');
}

function proxyConf(port, memcached, dir) {
  const filters = [
    'catch_errors',
    'gatekeeper',
    'healthcheck',
    'proxy_logging',
    'listing_formats',
    'copy',
    'slo',
    'dlo',
  ];
  return [
    ...defaults(port, dir),
    '[pipeline:main]',
    'pipeline = catch_errors gatekeeper healthcheck proxy_logging cache listing_formats s3api tempauth copy slo dlo proxy_logging proxy-server',
    '[app:proxy-server]',
    'use = egg:swift#proxy',
    'account_autocreate = true',
    '[filter:s3api]',
    'use = egg:swift#s3api',
    'location = us-east-1',
    '[filter:tempauth]',
    'use = egg:swift#tempauth',
    `user_test_builder = ${KEYS.builder.secretkey} .admin`,
    `user_test_reader = ${KEYS.reader.secretkey}`,
    '[filter:cache]',
    'use = egg:swift#memcache',
    `memcache_servers = 127.0.0.1:${memcached}`,
    ...filters.flatMap((f) => [`[filter:${f}]`, `use = egg:swift#${f}`]),
    '',
  ].join('\n');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts memcached and Swift's account, container, object and proxy servers (s3api + tempauth) on
 * 127.0.0.1 under `dir` (a fresh temporary directory, removed by close(), when not given), creates the
 * bucket as the builder and grants the reader read and list on it through a Swift container ACL.
 * Resolves to { endpoint, bucket, dir, storage(key, rootdirectory) (a storage.s3 block), close() }.
 */
export async function startSwiftS3(opts = {}) {
  const bucket = opts.bucket ?? 'sluice';
  const owned = !opts.dir;
  const dir = opts.dir ? resolve(opts.dir) : await mkdtemp(join(tmpdir(), 'sluice-swift-'));
  const children = [];
  const close = async () => {
    for (const c of children) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const exited = new Promise((res) => c.once('exit', res));
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    if (owned) await rm(dir, { recursive: true, force: true });
  };
  try {
    const etc = join(dir, 'etc');
    await rm(etc, { recursive: true, force: true });
    await mkdir(etc, { recursive: true });
    await mkdir(join(dir, 'srv', 'd1'), { recursive: true });
    await writeFile(
      join(etc, 'swift.conf'),
      '[swift-hash]\nswift_hash_path_suffix = sluice\nswift_hash_path_prefix = sluice\n[storage-policy:0]\nname = gold\ndefault = yes\n',
    );
    const ports = { account: await freePort(), container: await freePort(), object: await freePort() };
    const run = promisify(execFile);
    for (const [kind, port] of Object.entries(ports)) {
      await run('swift-ring-builder', [`${kind}.builder`, 'create', '6', '1', '1'], { cwd: etc });
      await run('swift-ring-builder', [`${kind}.builder`, 'add', `r1z1-127.0.0.1:${port}/d1`, '1'], { cwd: etc });
      await run('swift-ring-builder', [`${kind}.builder`, 'rebalance'], { cwd: etc });
      await writeFile(join(etc, `${kind}-server.conf`), serverConf(kind, port, dir));
    }
    const memcached = await freePort();
    const proxy = opts.port ?? (await freePort());
    await writeFile(join(etc, 'proxy-server.conf'), proxyConf(proxy, memcached, dir));
    const logs = [];
    const track = (c, name) => {
      let out = '';
      c.stdout?.on('data', (d) => (out = (out + d).slice(-4000)));
      c.stderr?.on('data', (d) => (out = (out + d).slice(-4000)));
      children.push(c);
      logs.push(() => `${name}: ${out}`);
    };
    const root = process.getuid?.() === 0 ? ['-u', 'root'] : [];
    track(
      spawn('memcached', ['-l', '127.0.0.1', '-p', String(memcached), '-U', '0', ...root], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
      'memcached',
    );
    for (const kind of ['account', 'container', 'object', 'proxy']) {
      track(
        spawn(PYTHON, [`/usr/bin/swift-${kind}-server`, join(etc, `${kind}-server.conf`)], {
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
        kind,
      );
    }
    const endpoint = `http://127.0.0.1:${proxy}`;
    let ready = false;
    for (let i = 0; i < 600 && !ready; i++) {
      if (children.some((c) => c.exitCode !== null)) break;
      ready = await fetch(`${endpoint}/healthcheck`).then(
        (r) => r.ok,
        () => false,
      );
      if (!ready) await sleep(100);
    }
    if (!ready) throw new Error(`swift did not start:\n${logs.map((l) => l()).join('\n')}`);
    // The bucket is a Swift container: created, and the reader's ACL set, through Swift's own API. Right
    // after start the proxy can answer 503 while the account and container servers come up: tried again.
    let status = 0;
    for (let i = 0; i < 60; i++) {
      const auth = await fetch(`${endpoint}/auth/v1.0`, {
        headers: { 'x-auth-user': KEYS.builder.accesskey, 'x-auth-key': KEYS.builder.secretkey },
      });
      const token = auth.headers.get('x-auth-token');
      if (auth.ok && token) {
        const headers = { 'x-auth-token': token, 'x-container-read': `${KEYS.reader.accesskey},.rlistings` };
        status = (await fetch(`${endpoint}/v1/AUTH_test/${bucket}`, { method: 'PUT', headers })).status;
        if (status === 201 || status === 202) break;
      } else {
        status = auth.status;
      }
      await sleep(250 * Math.min(i + 1, 4));
    }
    if (status !== 201 && status !== 202)
      throw new Error(`creating bucket "${bucket}" failed: ${status}\n${logs.map((l) => l()).join('\n')}`);
    return {
      endpoint,
      bucket,
      dir,
      storage: (key = KEYS.builder, rootdirectory = '/registry') => ({
        region: 'us-east-1',
        regionendpoint: endpoint,
        bucket,
        rootdirectory,
        secure: false,
        ...key,
      }),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/** The YAML block for one key, to paste into a Sluice config. */
function yamlBlock(s3) {
  return [
    'storage:',
    '  s3:',
    ...Object.entries(s3).map(([k, v]) => `    ${k}: ${typeof v === 'string' ? JSON.stringify(v) : v}`),
  ].join('\n');
}

async function main() {
  const args = process.argv.slice(2);
  const opt = (name) => {
    const i = args.indexOf(`--${name}`);
    return i === -1 ? undefined : args[i + 1];
  };
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write('usage: node scripts/s3-dev.mjs [--bucket NAME] [--port PORT] [--dir DIR]\n');
    return;
  }
  if (!hasSwift()) {
    process.stderr.write(
      's3-dev: swift is not installed: apt-get install swift swift-proxy swift-object swift-container swift-account memcached\n',
    );
    process.exit(1);
  }
  const port = opt('port') ? Number(opt('port')) : undefined;
  const s = await startSwiftS3({ bucket: opt('bucket'), dir: opt('dir'), port });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void s.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.stdout.write(
    [
      `# Swift s3api on ${s.endpoint}, bucket "${s.bucket}", data in ${s.dir}${opt('dir') ? '' : ' (removed at exit)'}`,
      '# Paste into a Sluice config (a key that reads and writes):',
      yamlBlock(s.storage(KEYS.builder)),
      '# A key that can only read and list the bucket, for read-only nodes:',
      `#   accesskey: "${KEYS.reader.accesskey}", secretkey: "${KEYS.reader.secretkey}"`,
      '# Ctrl-C stops it.',
      '',
    ].join('\n'),
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    process.stderr.write(`s3-dev: ${e.message}\n`);
    process.exit(1);
  });
}
