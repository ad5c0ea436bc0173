import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, Agent } from 'undici';
import { freePort, waitForHttp } from '../helpers/clients.js';
import { dockerCli } from '../helpers/dockerd.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, type RunResult } from '../helpers/tools.js';

/** A Sluice pull-through cache for `docker.io` started by a test, with an audit log to read back. */
export interface TestCache extends TestRegistry {
  auditPath: string;
  /** The audit log's records so far (fetches, refusals, requests). */
  audit(): Promise<Record<string, unknown>[]>;
  /** One sample of the cache's Prometheus metrics (`name{labels}`), 0 when absent. */
  metric(sample: string): Promise<number>;
}

/** Starts a cache whose `docker.io` upstream is reached at `upstreamUrl`; `upstream` is merged into its upstream config. */
export async function startCache(upstreamUrl: string, flows: unknown[], upstream: Record<string, unknown> = {}): Promise<TestCache> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-cache-audit-'));
  const auditPath = join(dir, 'audit.jsonl');
  const reg = await startRegistry({
    upstreams: { 'docker.io': { url: upstreamUrl, ttl: '1h', timeout: '3s', ...upstream } },
    flows,
    audit: { path: auditPath },
  });
  return {
    ...reg,
    auditPath,
    audit: async () => {
      const text = await readFile(auditPath, 'utf8').catch(() => '');
      return text
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    metric: async (sample) => {
      const text = await (await fetch(`${reg.url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
      return line ? Number(line.split(' ').pop()) : 0;
    },
    close: async () => {
      await reg.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A dockerd started with extra flags (a `--config-file` with registry-mirrors, say). */
export interface MirrorDaemon {
  host: string;
  dir: string;
  /** Runs the Docker CLI against this daemon; never throws on a non-zero exit. */
  docker(args: string[], timeoutMs?: number): Promise<RunResult>;
  /** dockerd's own log so far. */
  log(): Promise<string>;
  stop(): Promise<void>;
}

async function ping(socket: string): Promise<boolean> {
  const agent = new Agent({ connect: { socketPath: socket } });
  try {
    const r = await request('http://docker/_ping', { dispatcher: agent });
    await r.body.text();
    return r.statusCode === 200;
  } catch {
    return false;
  } finally {
    await agent.close();
  }
}

/**
 * Starts dockerd (vfs, no networking setup) with `daemonJson` written to its `--config-file`, as an
 * operator configures registry-mirrors. Sockets live under /tmp/sd-XXXX to stay below the unix path limit.
 */
export async function startDockerdWithConfig(daemonJson: Record<string, unknown>): Promise<MirrorDaemon> {
  const dir = await mkdtemp('/tmp/sd-');
  const socket = join(dir, 'docker.sock');
  const configFile = join(dir, 'daemon.json');
  await writeFile(configFile, JSON.stringify(daemonJson, null, 2));
  const logPath = join(dir, 'dockerd.log');
  const log = openSync(logPath, 'w');
  const child: ChildProcess = spawn(
    'dockerd',
    [
      '--config-file', configFile,
      '--storage-driver=vfs',
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--data-root', join(dir, 'data'),
      '--exec-root', join(dir, 'exec'),
      '--pidfile', join(dir, 'pid'),
      '--host', `unix://${socket}`,
    ],
    { stdio: ['ignore', log, log] },
  );
  closeSync(log);
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    // dockerd's own containerd can still be writing under exec/ for a moment after dockerd exits.
    for (let i = 0; i < 50 && existsSync(dir); i++) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      if (existsSync(dir)) await new Promise((r) => setTimeout(r, 100));
    }
  };
  const host = `unix://${socket}`;
  const cfgDir = join(dir, 'cli');
  await mkdir(cfgDir, { recursive: true });
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) break;
    if (existsSync(socket) && (await ping(socket))) {
      return {
        host,
        dir,
        // A CLI config of its own, so no login of the machine's user takes part.
        docker: (args, timeoutMs = 120_000) => run(dockerCli(), ['-H', host, ...args], { env: { DOCKER_CONFIG: cfgDir }, timeoutMs }),
        log: () => readFile(logPath, 'utf8').catch(() => ''),
        stop,
      };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const text = await readFile(logPath, 'utf8').catch(() => '');
  await stop();
  throw new Error(`dockerd did not become ready:\n${text.slice(-4000)}`);
}

/** A running Distribution 2.8 with htpasswd (Basic) auth. */
export interface AuthDistribution {
  url: string;
  host: string;
  stop(): Promise<void>;
}

/** Starts Distribution (`docker-registry`) on a free port with htpasswd auth from `htpasswdPath`; stop it in `finally`. */
export async function startDistributionHtpasswd(dir: string, htpasswdPath: string): Promise<AuthDistribution> {
  await mkdir(join(dir, 'data'), { recursive: true });
  let lastError: unknown;
  // A port found free can be taken before the daemon binds it; try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const cfg = join(dir, 'config.yml');
    await writeFile(
      cfg,
      [
        'version: 0.1',
        'log: {level: error}',
        `storage: {filesystem: {rootdirectory: ${JSON.stringify(join(dir, 'data'))}}, delete: {enabled: true}}`,
        `http: {addr: 127.0.0.1:${port}}`,
        `auth: {htpasswd: {realm: basic-realm, path: ${JSON.stringify(htpasswdPath)}}}`,
        '',
      ].join('\n'),
    );
    const child = spawn('docker-registry', ['serve', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<void>((res) => child.once('exit', () => res()));
    const stop = async (): Promise<void> => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
    };
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitForHttp(`${url}/v2/`, child);
      return { url, host: `127.0.0.1:${port}`, stop };
    } catch (e) {
      lastError = new Error(`${(e as Error).message}\n${stderr}`);
      await stop();
    }
  }
  throw lastError;
}

/** The digest `ctr images ls` shows for a reference, or undefined when containerd does not have it. */
export function ctrImageDigest(listing: string, ref: string): string | undefined {
  for (const line of listing.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols[0] === ref) return cols.find((c) => c.startsWith('sha256:'));
  }
  return undefined;
}
