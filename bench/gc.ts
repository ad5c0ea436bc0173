// The gc workload (issue 18): Sluice's `sluice gc` against Distribution 2.8.2's `registry garbage-collect` on
// copies of one seeded root (time, peak RSS, blobs left), at two scales for the memory per blob; and manifest
// GET latency of a serving Sluice with and without collection passes running on that root.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { countBlobs, seedGcRoot, type GcRoot } from './gc-seed.js';
import { load } from './load.js';
import type { MetricInfo } from './report.js';
import { hasCommand, startServer, type BenchServer, type ServerKind, type ServerOptions } from './servers.js';
import type { Sample } from './workloads.js';

const MiB = 1024 * 1024;

/** Sizes of the gc workload. */
export interface GcSizes {
  repos: number;
  blobs: number;
  /** The second, smaller root for the memory per blob: this fraction of the first. */
  smallFraction: number;
  serveSeconds: number;
  serveConnections: number;
}

/** Sizes of a full run and of --quick, with the command line's overrides. */
export function gcSizes(quick: boolean, repos?: string, blobs?: string): GcSizes {
  const s = quick
    ? { repos: 30, blobs: 400, smallFraction: 0.5, serveSeconds: 2, serveConnections: 16 }
    : { repos: 10_000, blobs: 100_000, smallFraction: 0.25, serveSeconds: 10, serveConnections: 16 };
  if (repos) s.repos = Number(repos);
  if (blobs) s.blobs = Number(blobs);
  return s;
}

/** The rows of the gc workload, in table order. */
export const GC_METRICS: MetricInfo[] = [
  { id: 'gc.dry.time', label: 'gc: dry run (-d), whole root', unit: 's', better: 'lower' },
  { id: 'gc.dry.cpu', label: 'gc: dry run, CPU (user + system)', unit: 's', better: 'lower' },
  { id: 'gc.dry.rss', label: 'gc: dry run, peak RSS', unit: 'MiB', better: 'lower' },
  { id: 'gc.sweep.time', label: 'gc: sweep (Sluice --grace 0s)', unit: 's', better: 'lower' },
  { id: 'gc.sweep.cpu', label: 'gc: sweep, CPU (user + system)', unit: 's', better: 'lower' },
  { id: 'gc.sweep.rss', label: 'gc: sweep, peak RSS', unit: 'MiB', better: 'lower' },
  { id: 'gc.sweep.left', label: 'gc: sweep, blobs left (must be equal)', unit: 'blobs', better: 'lower' },
  { id: 'gc.untagged.time', label: 'gc: sweep with -m (delete untagged)', unit: 's', better: 'lower' },
  { id: 'gc.untagged.cpu', label: 'gc: sweep with -m, CPU (user + system)', unit: 's', better: 'lower' },
  { id: 'gc.untagged.rss', label: 'gc: sweep with -m, peak RSS', unit: 'MiB', better: 'lower' },
  { id: 'gc.untagged.left', label: 'gc: sweep with -m, blobs left (must be equal)', unit: 'blobs', better: 'lower' },
  { id: 'gc.small.dry.rss', label: 'gc: dry run, peak RSS, smaller root', unit: 'MiB', better: 'lower' },
  { id: 'gc.small.untagged.rss', label: 'gc: sweep with -m, peak RSS, smaller root', unit: 'MiB', better: 'lower' },
  { id: 'gc.dry.perblob', label: 'gc: dry run, RSS per extra blob', unit: 'B/blob', better: 'lower' },
  { id: 'gc.untagged.perblob', label: 'gc: sweep with -m, RSS per extra blob', unit: 'B/blob', better: 'lower' },
  { id: 'gc.serve.idle.p50', label: 'gc: manifest GET p50, no collection running', unit: 'ms', better: 'lower' },
  { id: 'gc.serve.idle.p99', label: 'gc: manifest GET p99, no collection running', unit: 'ms', better: 'lower' },
  {
    id: 'gc.serve.during.p50',
    label: 'gc: manifest GET p50 during passes (Dist: no online GC)',
    unit: 'ms',
    better: 'lower',
  },
  {
    id: 'gc.serve.during.p99',
    label: 'gc: manifest GET p99 during passes (Dist: no online GC)',
    unit: 'ms',
    better: 'lower',
  },
  {
    id: 'gc.serve.during.ratio',
    label: 'gc: p99 during passes / p99 without (Dist: none)',
    unit: '×',
    better: 'lower',
  },
  {
    id: 'gc.serve.passes',
    label: 'gc: passes finished during the GET window (Dist: none)',
    unit: 'passes',
    better: 'higher',
  },
];

/** Rows only Sluice has: Distribution 2.8.2 collects only offline. */
export const GC_SLUICE_ONLY = new Set([
  'gc.serve.during.p50',
  'gc.serve.during.p99',
  'gc.serve.during.ratio',
  'gc.serve.passes',
]);

/** The two seeded roots every round copies. */
export interface GcBench {
  sizes: GcSizes;
  stop(): Promise<void>;
  full: GcRoot;
  small: GcRoot;
  work: string;
}

type Mode = 'dry' | 'sweep' | 'untagged';

/** Whether the gc workload can run here: peak RSS of a child comes from GNU time. */
export function canRunGc(): boolean {
  return hasCommand('/usr/bin/time');
}

/**
 * Seeds the full root and the smaller one (written once per run; every sweep works on a copy) under `base`
 * (the run's temporary directory unless --gc-dir names another, such as a tmpfs).
 */
export async function prepareGc(base: string, sizes: GcSizes, log: (m: string) => void): Promise<GcBench> {
  const dir = await mkdtemp(join(base, 'sluice-bench-gc-'));
  const small = {
    repos: Math.max(1, Math.round(sizes.repos * sizes.smallFraction)),
    blobs: Math.round(sizes.blobs * sizes.smallFraction),
  };
  log(
    `gc: writing ${sizes.repos} repositories and ${sizes.blobs} blobs into the layout (and ${small.repos}/${small.blobs} for the second scale)`,
  );
  const t = performance.now();
  const full = await seedGcRoot(join(dir, 'full'), sizes.repos, sizes.blobs);
  const smallRoot = await seedGcRoot(join(dir, 'small'), small.repos, small.blobs);
  log(
    `gc: seeded in ${((performance.now() - t) / 1000).toFixed(1)} s (${full.orphans} orphan blobs, ${full.untaggedOnly} more under -m)`,
  );
  return { sizes, full, small: smallRoot, work: dir, stop: () => removeTree(dir) };
}

/** A hard-linked copy of a root: collectors only unlink and write new files, so the original stays as it was. */
async function copyRoot(from: string, to: string): Promise<void> {
  await removeTree(to);
  await runQuiet('cp', ['-al', from, to]);
}

/** `rm -rf`: Node's recursive rm took minutes for the half a million entries of a full-size root. */
function removeTree(path: string): Promise<void> {
  return runQuiet('rm', ['-rf', '--', path]);
}

function runQuiet(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`)),
    );
  });
}

/** One collector run on `root`: wall time from spawn to exit (the command as an operator runs it) and peak RSS. */
async function runCollector(
  kind: ServerKind,
  root: string,
  mode: Mode,
  dir: string,
  opts: ServerOptions,
): Promise<{ seconds: number; cpuSeconds: number; rssMiB: number }> {
  const cfg = join(dir, `gc-${kind}.yml`);
  await writeFile(
    cfg,
    `version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: ${root}}, delete: {enabled: true}}\n`,
  );
  const flags =
    kind === 'sluice' ? (mode === 'dry' ? ['--dry-run'] : ['--grace', '0s']) : mode === 'dry' ? ['--dry-run'] : [];
  if (mode === 'untagged') flags.push('-m');
  const cmd =
    kind === 'sluice'
      ? [
          process.execPath,
          ...(opts.nodeArgs ?? []),
          opts.sluiceBin ?? new URL('../../bin/sluice.js', import.meta.url).pathname,
          'gc',
          cfg,
          ...flags,
        ]
      : ['docker-registry', 'garbage-collect', ...flags, cfg];
  const timeFile = join(dir, `time-${kind}.txt`);
  const t = performance.now();
  await runQuiet('/usr/bin/time', ['-f', '%M %U %S', '-o', timeFile, ...cmd]);
  const seconds = (performance.now() - t) / 1000;
  // GNU time: maximum resident set size in KiB, user and system seconds (the last line; earlier ones may be notes).
  const [kib, user, system] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number) as [
    number,
    number,
    number,
  ];
  return { seconds, cpuSeconds: user + system, rssMiB: kib / 1024 };
}

/** The gc rows for one kind of registry, one round. */
export async function gcWorkloads(
  kind: ServerKind,
  bench: GcBench,
  out: Sample,
  opts: ServerOptions,
  log: (m: string) => void,
): Promise<void> {
  const dir = join(bench.work, `run-${kind}`);
  await mkdir(dir, { recursive: true });
  const copy = join(dir, 'root');
  try {
    // A dry run changes nothing (checked below), so it reads the seeded root itself.
    const dry = await runCollector(kind, bench.full.root, 'dry', dir, opts);
    out['gc.dry.time'] = dry.seconds;
    out['gc.dry.cpu'] = dry.cpuSeconds;
    out['gc.dry.rss'] = dry.rssMiB;
    for (const [mode, garbage] of [
      ['sweep', bench.full.orphans],
      ['untagged', bench.full.orphans + bench.full.untaggedOnly],
    ] as const) {
      await copyRoot(bench.full.root, copy);
      const r = await runCollector(kind, copy, mode, dir, opts);
      const left = await countBlobs(copy);
      out[`gc.${mode}.time`] = r.seconds;
      out[`gc.${mode}.cpu`] = r.cpuSeconds;
      out[`gc.${mode}.rss`] = r.rssMiB;
      out[`gc.${mode}.left`] = left;
      const expected = bench.full.blobs - garbage;
      log(
        `gc: ${kind} ${mode}: ${r.seconds.toFixed(2)} s, ${r.rssMiB.toFixed(1)} MiB, ${left} blobs left of ${bench.full.blobs} (expected ${expected})${left === expected ? '' : ' — MISMATCH'}`,
      );
    }
    const smallDry = await runCollector(kind, bench.small.root, 'dry', dir, opts);
    await copyRoot(bench.small.root, copy);
    const smallSweep = await runCollector(kind, copy, 'untagged', dir, opts);
    out['gc.small.dry.rss'] = smallDry.rssMiB;
    out['gc.small.untagged.rss'] = smallSweep.rssMiB;
    const extra = bench.full.blobs - bench.small.blobs;
    out['gc.dry.perblob'] = ((dry.rssMiB - smallDry.rssMiB) * MiB) / extra;
    out['gc.untagged.perblob'] = ((out['gc.untagged.rss']! - smallSweep.rssMiB) * MiB) / extra;
    if ((await countBlobs(bench.full.root)) !== bench.full.blobs)
      throw new Error('gc bench: a dry run or a copy changed the seeded root');
    await serveRows(kind, bench, copy, out, opts);
  } finally {
    await removeTree(dir);
  }
}

/** The count and total seconds of finished passes, from the server's /metrics. */
async function passesSoFar(url: string): Promise<{ count: number; seconds: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const num = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? 0);
  return { count: num('sluice_gc_pass_duration_seconds_count'), seconds: num('sluice_gc_pass_duration_seconds_sum') };
}

/**
 * Manifest GETs by tag at a fixed concurrency on a fresh copy of the full root: first with no collection
 * (Distribution has only this), then, for Sluice, in a server whose passes run back to back (interval 1s,
 * grace 0s, delete-untagged: the first passes record and sweep the garbage, later ones mark the whole root).
 */
async function serveRows(
  kind: ServerKind,
  bench: GcBench,
  copy: string,
  out: Sample,
  opts: ServerOptions,
): Promise<void> {
  const { sample } = bench.full;
  const { serveSeconds, serveConnections } = bench.sizes;
  await copyRoot(bench.full.root, copy);
  const storage = (gc: string) => `{filesystem: {rootdirectory: ${copy}}, delete: {enabled: true}${gc}}`;
  const measure = async (s: BenchServer, seconds: number) => {
    const r = await load(`${s.url}/v2/${sample.repository}/manifests/${sample.tag}`, 'GET', serveConnections, seconds, {
      accept: sample.mediaType,
    });
    if (r.errors > 0 || r.requests === 0)
      throw new Error(`gc serve (${kind}): ${r.errors} errors, ${r.requests} answered`);
    return r;
  };
  const idle = await startServer(kind, { ...opts, storage: storage('') });
  try {
    await measure(idle, 1);
    const r = await measure(idle, serveSeconds);
    out['gc.serve.idle.p50'] = r.p50;
    out['gc.serve.idle.p99'] = r.p99;
  } finally {
    await idle.stop();
  }
  if (kind !== 'sluice') return;
  const busy = await startServer(kind, {
    ...opts,
    storage: storage(', gc: {enabled: true, interval: 1s, grace: 0s, deleteuntagged: true}'),
  });
  try {
    // The first pass starts one interval after the start, inside this warm-up.
    await measure(busy, 1.5);
    const before = await passesSoFar(busy.url);
    const r = await measure(busy, serveSeconds);
    const after = await passesSoFar(busy.url);
    out['gc.serve.during.p50'] = r.p50;
    out['gc.serve.during.p99'] = r.p99;
    out['gc.serve.during.ratio'] = r.p99 / out['gc.serve.idle.p99']!;
    out['gc.serve.passes'] = after.count - before.count;
  } finally {
    await busy.stop();
  }
}
