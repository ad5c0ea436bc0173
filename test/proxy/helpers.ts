import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/clients.js';
import { dockerCli, startDockerd, type TestDaemon } from '../helpers/dockerd.js';
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
export async function startCache(
  upstreamUrl: string,
  flows: unknown[],
  upstream: Record<string, unknown> = {},
): Promise<TestCache> {
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

/**
 * Starts dockerd (the shared test helper) with `daemonJson` as its `--config-file`, as an operator
 * configures registry-mirrors; its Docker CLI gets a config folder of its own.
 */
export async function startDockerdWithConfig(daemonJson: Record<string, unknown>): Promise<MirrorDaemon> {
  const cfg = await mkdtemp(join(tmpdir(), 'sluice-daemon-json-'));
  const configFile = join(cfg, 'daemon.json');
  await writeFile(configFile, JSON.stringify(daemonJson, null, 2));
  let d: TestDaemon;
  try {
    d = await startDockerd(['--config-file', configFile]);
  } catch (e) {
    await rm(cfg, { recursive: true, force: true });
    throw e;
  }
  const cliDir = join(cfg, 'cli');
  await mkdir(cliDir, { recursive: true });
  return {
    host: d.host,
    dir: d.dir,
    // A CLI config of its own, so no login of the machine's user takes part.
    docker: (args, timeoutMs = 120_000) =>
      run(dockerCli(), ['-H', d.host, ...args], { env: { DOCKER_CONFIG: cliDir }, timeoutMs }),
    log: d.log,
    stop: async () => {
      await d.stop();
      await rm(cfg, { recursive: true, force: true });
    },
  };
}

/** A running Distribution 2.8 with htpasswd (Basic) auth. */
export type AuthDistribution = Distribution;

/** Starts Distribution (`docker-registry`) on a free port with htpasswd auth from `htpasswdPath`; stop it in `finally`. */
export function startDistributionHtpasswd(dir: string, htpasswdPath: string): Promise<AuthDistribution> {
  return startDistribution(join(dir, 'data'), [
    `auth: {htpasswd: {realm: basic-realm, path: ${JSON.stringify(htpasswdPath)}}}`,
  ]);
}

/** The digest `ctr images ls` shows for a reference, or undefined when containerd does not have it. */
export function ctrImageDigest(listing: string, ref: string): string | undefined {
  for (const line of listing.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols[0] === ref) return cols.find((c) => c.startsWith('sha256:'));
  }
  return undefined;
}
