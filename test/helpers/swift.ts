import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from './clients.js';
import { runOk } from './tools.js';

/** Debian's Swift runs under Debian's Python, whatever `python3` is first on PATH. */
const PYTHON = '/usr/bin/python3';

/** Whether Debian's swift-proxy (with s3api) and memcached (tempauth keeps tokens there) are installed. */
export function hasSwift(): boolean {
  return existsSync('/usr/bin/swift-proxy-server') && existsSync('/usr/bin/swift-object-server') && existsSync('/usr/bin/memcached') && existsSync(PYTHON);
}

/** An S3 key pair of the test Swift (tempauth user `account:user`, its password as the secret). */
export interface SwiftKey {
  accesskey: string;
  secretkey: string;
}

/** A one-replica OpenStack Swift with s3api started for a test file: SigV4 checked, per-user access. */
export interface TestSwift {
  endpoint: string;
  bucket: string;
  /** May read and write the bucket (an account admin). */
  builder: SwiftKey;
  /** May only read and list the bucket (a container read ACL). */
  reader: SwiftKey;
  /** A `storage.s3` block for this server. */
  config(rootdirectory: string, key: SwiftKey, extra?: Record<string, unknown>): Record<string, unknown>;
  close(): Promise<void>;
}

/** The [DEFAULT] section every server shares: one process, on 127.0.0.1:port, configs in <dir>/etc. */
function defaults(port: number, dir: string): string[] {
  return ['[DEFAULT]', 'bind_ip = 127.0.0.1', `bind_port = ${port}`, 'workers = 0', `swift_dir = ${join(dir, 'etc')}`, 'log_level = WARNING'];
}

function serverConf(kind: string, port: number, dir: string): string {
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

function proxyConf(port: number, memcached: number, dir: string): string {
  const filters = ['catch_errors', 'gatekeeper', 'healthcheck', 'proxy_logging', 'listing_formats', 'copy', 'slo', 'dlo'];
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
    'user_test_builder = builderpass .admin',
    'user_test_reader = readerpass',
    '[filter:cache]',
    'use = egg:swift#memcache',
    `memcache_servers = 127.0.0.1:${memcached}`,
    ...filters.flatMap((f) => [`[filter:${f}]`, `use = egg:swift#${f}`]),
    '',
  ].join('\n');
}

/**
 * Starts memcached and Swift's account, container, object and proxy servers (s3api + tempauth) on free
 * ports under a fresh directory, creates the bucket with the builder's key and grants the reader read
 * and list through a Swift container ACL.
 */
export async function startSwift(bucket = 'reg'): Promise<TestSwift> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-swift-'));
  const children: ChildProcess[] = [];
  const close = async () => {
    for (const c of children) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const exited = new Promise<void>((res) => c.once('exit', () => res()));
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const etc = join(dir, 'etc');
    await mkdir(etc, { recursive: true });
    await mkdir(join(dir, 'srv', 'd1'), { recursive: true });
    await writeFile(join(etc, 'swift.conf'), '[swift-hash]\nswift_hash_path_suffix = sluice\nswift_hash_path_prefix = sluice\n[storage-policy:0]\nname = gold\ndefault = yes\n');
    const ports = { account: await freePort(), container: await freePort(), object: await freePort() };
    for (const [kind, port] of Object.entries(ports)) {
      await runOk('swift-ring-builder', [`${kind}.builder`, 'create', '6', '1', '1'], { cwd: etc });
      await runOk('swift-ring-builder', [`${kind}.builder`, 'add', `r1z1-127.0.0.1:${port}/d1`, '1'], { cwd: etc });
      await runOk('swift-ring-builder', [`${kind}.builder`, 'rebalance'], { cwd: etc });
      await writeFile(join(etc, `${kind}-server.conf`), serverConf(kind, port, dir));
    }
    const memcached = await freePort();
    const proxy = await freePort();
    await writeFile(join(etc, 'proxy-server.conf'), proxyConf(proxy, memcached, dir));
    const log = (c: ChildProcess, name: string) => {
      let out = '';
      c.stdout?.on('data', (d) => (out = (out + d).slice(-4000)));
      c.stderr?.on('data', (d) => (out = (out + d).slice(-4000)));
      return () => `${name}: ${out}`;
    };
    const logs: (() => string)[] = [];
    const mc = spawn('memcached', ['-l', '127.0.0.1', '-p', String(memcached), '-U', '0', ...(process.getuid?.() === 0 ? ['-u', 'root'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(mc);
    logs.push(log(mc, 'memcached'));
    for (const kind of ['account', 'container', 'object', 'proxy']) {
      const c = spawn(PYTHON, [`/usr/bin/swift-${kind}-server`, join(etc, `${kind}-server.conf`)], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(c);
      logs.push(log(c, kind));
    }
    const endpoint = `http://127.0.0.1:${proxy}`;
    let ready = false;
    for (let i = 0; i < 300 && !ready; i++) {
      if (children.some((c) => c.exitCode !== null)) break;
      ready = await fetch(`${endpoint}/healthcheck`).then((r) => r.ok, () => false);
      if (!ready) await new Promise((r) => setTimeout(r, 100));
    }
    if (!ready) throw new Error(`swift did not start:\n${logs.map((l) => l()).join('\n')}`);
    const builder = { accesskey: 'test:builder', secretkey: 'builderpass' };
    const reader = { accesskey: 'test:reader', secretkey: 'readerpass' };
    const c = new S3Client({
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: builder.accesskey, secretAccessKey: builder.secretkey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    try {
      await c.send(new CreateBucketCommand({ Bucket: bucket }));
    } finally {
      c.destroy();
    }
    // s3api maps a bucket to a container; the reader gets read and listing through Swift's own ACL.
    const auth = await fetch(`${endpoint}/auth/v1.0`, { headers: { 'x-auth-user': 'test:builder', 'x-auth-key': 'builderpass' } });
    const token = auth.headers.get('x-auth-token');
    if (!auth.ok || !token) throw new Error(`swift tempauth refused the builder: ${auth.status}`);
    const acl = await fetch(`${endpoint}/v1/AUTH_test/${bucket}`, { method: 'POST', headers: { 'x-auth-token': token, 'x-container-read': 'test:reader,.rlistings' } });
    if (acl.status !== 204) throw new Error(`setting the reader's ACL failed: ${acl.status}`);
    return {
      endpoint,
      bucket,
      builder,
      reader,
      config: (rootdirectory, key, extra = {}) => ({ region: 'us-east-1', regionendpoint: endpoint, bucket, rootdirectory, secure: false, v4auth: true, chunksize: 5 << 20, ...key, ...extra }),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
