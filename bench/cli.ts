// The cli workload (issue 22): how fast `sluice` starts and how small `sluice serve` sits, beside the tool or
// server a user would otherwise run (node -e 0, skopeo, skopeo sync, Distribution, a bare Node HTTP server).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MetricInfo } from './report.js';
import { freePort, hasCommand, startServer, type BenchServer, type ServerKind } from './servers.js';
import { median } from './report.js';
import { pushSmallImage, type Sample } from './workloads.js';

const MiB = 1024 * 1024;
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** How long one command may run before the bench gives up on it. */
const RUN_TIMEOUT_MS = 60_000;

/** The rows of the cli workload, in table order; each label names what its Distribution column holds. */
export const CLI_METRICS: MetricInfo[] = [
  { id: 'cli.version.cpu', label: 'cli: sluice --version, CPU (Dist column: node -e 0)', unit: 'ms', better: 'lower' },
  { id: 'cli.help.cpu', label: 'cli: sluice --help, CPU (Dist column: node -e 0)', unit: 'ms', better: 'lower' },
  {
    id: 'cli.version.wall',
    label: 'cli: sluice --version, wall (Dist column: node -e 0)',
    unit: 'ms',
    better: 'lower',
  },
  {
    id: 'cli.inspect.wall',
    label: 'cli: inspect a small image (Dist column: skopeo inspect)',
    unit: 'ms',
    better: 'lower',
  },
  {
    id: 'cli.copy.wall',
    label: 'cli: copy a small image registry → oci: (Dist: skopeo copy)',
    unit: 'ms',
    better: 'lower',
  },
  {
    id: 'cli.sync.wall',
    label: 'cli: sync, unchanged mirror, 1 image (Dist: skopeo sync)',
    unit: 'ms',
    better: 'lower',
  },
  {
    id: 'cli.passthrough.wall',
    label: 'cli: passthrough --mode off, nothing to do (Dist: node -e 0)',
    unit: 'ms',
    better: 'lower',
  },
  {
    id: 'cli.serve.ready',
    label: 'cli: serve, spawn to first 200 on /v2/ (Dist: Distribution)',
    unit: 'ms',
    better: 'lower',
  },
  { id: 'mem.idle', label: 'memory: idle server RSS (Dist column: Distribution)', unit: 'MiB', better: 'lower' },
  {
    id: 'mem.idle.bare',
    label: 'memory: idle server RSS (Dist column: bare Node http server)',
    unit: 'MiB',
    better: 'lower',
  },
];

/** The registries the cli workload reads from and writes to, and the files its commands name. */
export interface CliBench {
  source: BenchServer;
  dest: BenchServer;
  /** `docker://HOST/bench/small:v1` on the source. */
  ref: string;
  /** skopeo sync's YAML naming that one image. */
  yaml: string;
  dir: string;
  /** Runs of each command per round (the median is the round's sample). */
  repeats: number;
  stop(): Promise<void>;
}

/** CPU time (user + system) of this process's children that have exited and been waited for, in milliseconds. */
function childrenCpuMs(): number {
  // cutime and cstime follow the parenthesised command name as its 14th and 15th fields, in 100 Hz ticks.
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
}

/** Runs a command to its end; resolves with its wall and CPU milliseconds, rejects with its output when it fails. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ wallMs: number; cpuMs: number }> {
  return new Promise((resolve, reject) => {
    const cpu = childrenCpuMs();
    const t = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const wallMs = performance.now() - t;
      if (code === 0) resolve({ wallMs, cpuMs: childrenCpuMs() - cpu });
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code ?? signal}: ${err}`));
    });
  });
}

/**
 * Runs a command `n` times; the medians of wall and CPU. CPU is counted in 10 ms ticks, so the mean of the
 * runs is taken for it (a median of ticks would round every run of a 60 ms command the same way).
 */
async function repeat(
  n: number,
  cmd: string,
  args: () => string[],
  env?: NodeJS.ProcessEnv,
): Promise<{ wallMs: number; cpuMs: number }> {
  const walls: number[] = [];
  let cpu = 0;
  for (let i = 0; i < n; i++) {
    const r = await run(cmd, args(), env);
    walls.push(r.wallMs);
    cpu += r.cpuMs;
  }
  return { wallMs: median(walls)!, cpuMs: cpu / n };
}

const sluice = (bin: string | undefined) => bin ?? join(repoRoot, 'bin/sluice.js');

/** Starts the source (a small image pushed) and destination registries and writes the sync YAML. */
export async function prepareCli(work: string, kind: ServerKind, repeats: number): Promise<CliBench> {
  const source = await startServer(kind);
  let dest: BenchServer | undefined;
  try {
    dest = await startServer(kind);
    await pushSmallImage(source.url, 'bench/small', 'v1');
    const dir = await mkdtemp(join(work, 'cli-'));
    const yaml = join(dir, 'sync.yml');
    await writeFile(yaml, `${source.host}:\n  tls-verify: false\n  images:\n    bench/small: ["v1"]\n`);
    const d = dest;
    return {
      source,
      dest: d,
      ref: `docker://${source.host}/bench/small:v1`,
      yaml,
      dir,
      repeats,
      stop: async () => {
        await d.stop();
        await source.stop();
      },
    };
  } catch (e) {
    await dest?.stop();
    await source.stop();
    throw e;
  }
}

/** Polls `GET url` every 5 ms until it answers 200; rejects when the child exits first or after 20 s. */
async function firstOk(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    const status = await new Promise<number>((resolve) => {
      const req = get(url, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', () => resolve(0));
    });
    if (status === 200) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${url} did not answer 200 within 20 s`);
}

function vmRss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? (Number(m[1]) * 1024) / MiB : 0;
}

/** Spawns a server, times spawn → first 200 on /v2/, waits `settleMs`, and reads its resident set; then stops it. */
async function serverStart(
  cmd: string,
  args: string[],
  url: string,
  settleMs: number,
): Promise<{ readyMs: number; rssMiB: number }> {
  const t = performance.now();
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'ignore', 'ignore'],
    env: { ...process.env, SLUICE_LOG_LEVEL: 'error' },
  });
  try {
    await firstOk(`${url}/v2/`, child);
    const readyMs = performance.now() - t;
    // Idle: after start-up's garbage is collectable and the first request's buffers are released.
    await new Promise((r) => setTimeout(r, settleMs));
    return { readyMs, rssMiB: vmRss(child.pid!) };
  } finally {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  }
}

/** A bare Node HTTP server that answers 200 `{}` to everything: the floor a Node registry starts from. */
const BARE_NODE =
  "require('node:http').createServer((q, s) => s.end('{}')).listen(Number(process.argv[1]), '127.0.0.1')";

/** Starts each server kind afresh: spawn to first 200, and the idle resident set a few seconds later. */
async function serverRows(
  kind: 'sluice' | 'distribution' | 'bare',
  dir: string,
  bin: string | undefined,
): Promise<{ readyMs: number; rssMiB: number }> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const root = await mkdtemp(join(dir, `${kind}-`));
  try {
    const settle = 3000;
    if (kind === 'bare')
      return await serverStart(process.execPath, ['-e', BARE_NODE, String(port)], `http://${host}`, settle);
    const cfg = join(root, 'config.yml');
    const storage = `{filesystem: {rootdirectory: ${join(root, 'data')}}, delete: {enabled: true}}`;
    if (kind === 'distribution') {
      await writeFile(cfg, `version: 0.1\nlog: {level: error}\nstorage: ${storage}\nhttp: {addr: "${host}"}\n`);
      return await serverStart('docker-registry', ['serve', cfg], `http://${host}`, settle);
    }
    await writeFile(cfg, `log: {level: error}\nstorage: ${storage}\nhttp: {addr: "${host}"}\n`);
    return await serverStart(process.execPath, [sluice(bin), 'serve', '--config', cfg], `http://${host}`, settle);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** One round of the cli workload: Sluice's commands into `s`, the reference tools' into `ref`. */
export async function cliRound(b: CliBench, s: Sample, ref: Sample, opts: { sluiceBin?: string } = {}): Promise<void> {
  const bin = sluice(opts.sluiceBin);
  const node = process.execPath;
  const n = b.repeats;
  const base = await repeat(n, node, () => ['-e', '0']);
  const version = await repeat(n, node, () => [bin, '--version']);
  const help = await repeat(n, node, () => [bin, '--help']);
  s['cli.version.cpu'] = version.cpuMs;
  s['cli.help.cpu'] = help.cpuMs;
  s['cli.version.wall'] = version.wallMs;
  ref['cli.version.cpu'] = ref['cli.help.cpu'] = base.cpuMs;
  ref['cli.version.wall'] = base.wallMs;
  s['cli.passthrough.wall'] = (await repeat(n, node, () => [bin, 'passthrough', '--mode', 'off'])).wallMs;
  ref['cli.passthrough.wall'] = base.wallMs;

  const haveSkopeo = hasCommand('skopeo');
  s['cli.inspect.wall'] = (await repeat(n, node, () => [bin, 'inspect', '--tls-verify=false', b.ref])).wallMs;
  if (haveSkopeo)
    ref['cli.inspect.wall'] = (await repeat(n, 'skopeo', () => ['inspect', '--tls-verify=false', b.ref])).wallMs;
  let k = 0;
  const fresh = () => `oci:${join(b.dir, `out-${++k}`)}:v1`;
  s['cli.copy.wall'] = (
    await repeat(n, node, () => [bin, 'copy', '-q', '--src-tls-verify=false', b.ref, fresh()])
  ).wallMs;
  if (haveSkopeo)
    ref['cli.copy.wall'] = (
      await repeat(n, 'skopeo', () => ['--insecure-policy', 'copy', '-q', '--src-tls-verify=false', b.ref, fresh()])
    ).wallMs;

  // The mirror is made once (not timed); each timed run finds it unchanged.
  const state = join(b.dir, 'sync-state');
  const sluiceSync = () => [
    bin,
    'sync',
    '--src',
    'yaml',
    b.yaml,
    '--dest',
    `docker://${b.dest.host}/mirror-sluice`,
    '--dest-tls-verify=false',
    '--state',
    state,
  ];
  const skopeoSync = () => [
    '--insecure-policy',
    'sync',
    '--src',
    'yaml',
    '--dest',
    'docker',
    '--dest-tls-verify=false',
    b.yaml,
    `${b.dest.host}/mirror-skopeo`,
  ];
  await run(node, sluiceSync());
  s['cli.sync.wall'] = (await repeat(n, node, sluiceSync)).wallMs;
  if (haveSkopeo) {
    await run('skopeo', skopeoSync());
    ref['cli.sync.wall'] = (await repeat(n, 'skopeo', skopeoSync)).wallMs;
  }

  const sl = await serverRows('sluice', b.dir, opts.sluiceBin);
  s['cli.serve.ready'] = sl.readyMs;
  s['mem.idle'] = s['mem.idle.bare'] = sl.rssMiB;
  if (hasCommand('docker-registry')) {
    const d = await serverRows('distribution', b.dir, undefined);
    ref['cli.serve.ready'] = d.readyMs;
    ref['mem.idle'] = d.rssMiB;
  }
  ref['mem.idle.bare'] = (await serverRows('bare', b.dir, undefined)).rssMiB;
}
