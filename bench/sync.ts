// The sync workload (issue 10): `sluice sync --src yaml` and `skopeo sync --src yaml` side by side, on one
// upstream registry and one YAML, each into an empty destination registry of its own (both of the same kind).
// A counting proxy in front of the upstream sees every request either tool sends it.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { pushBytes, putManifest } from './http.js';
import { startServer, type BenchServer, type ServerKind } from './servers.js';
import { inPool, timed, type Sample } from './workloads.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const KiB = 1024;
const MiB = 1024 * KiB;
/** How long one sync run may take before the bench gives up on it. */
const RUN_TIMEOUT_MS = 600_000;
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** Sizes for the sync workload. */
export interface SyncSizes {
  repos: number;
  tags: number;
}

/** Which sync command a run measures. */
export type SyncTool = 'sluice' | 'skopeo';

/** How to run Sluice's sync beyond the defaults (the bench's --cpu-prof and --sluice-bin apply to it). */
export interface SyncToolOptions {
  nodeArgs?: string[];
  sluiceBin?: string;
}

/** One image on the upstream: its repository, tag and manifest digest. */
interface SyncImage {
  repo: string;
  tag: string;
  digest: string;
}

/** What kind of request the proxy saw, by method and route. */
type RequestClass = 'HEAD manifests' | 'GET manifests' | 'GET blobs' | 'GET tags' | 'GET ping' | 'other';

/** A pass-through HTTP proxy that counts requests (by class) and response bytes. */
interface CountingProxy {
  host: string;
  counts: Record<RequestClass, number>;
  bytes: number;
  /** When the first request since the last reset arrived and the last response ended (performance.now() ms). */
  firstAt?: number;
  lastAt?: number;
  reset(): void;
  close(): Promise<void>;
}

/** The upstream, its proxy, the YAML both tools read, and what a complete sync must produce. */
export interface SyncBench {
  upstream: BenchServer;
  proxy: CountingProxy;
  sizes: SyncSizes;
  yaml: string;
  images: SyncImage[];
  /** Bytes of every distinct blob and manifest on the upstream: what a first sync must read at least once. */
  uniqueBytes: number;
  dir: string;
  stop(): Promise<void>;
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function classify(method: string, url: string): RequestClass {
  const path = url.split('?')[0]!;
  if (path === '/v2/' || path === '/v2') return method === 'GET' ? 'GET ping' : 'other';
  if (method === 'HEAD' && /\/manifests\/[^/]+$/.test(path)) return 'HEAD manifests';
  if (method !== 'GET') return 'other';
  if (/\/manifests\/[^/]+$/.test(path)) return 'GET manifests';
  if (/\/blobs\/[^/]+$/.test(path)) return 'GET blobs';
  if (/\/tags\/list$/.test(path)) return 'GET tags';
  return 'other';
}

const emptyCounts = (): Record<RequestClass, number> => ({
  'HEAD manifests': 0,
  'GET manifests': 0,
  'GET blobs': 0,
  'GET tags': 0,
  'GET ping': 0,
  other: 0,
});

/** Starts a counting proxy on 127.0.0.1 in front of `target` (`127.0.0.1:PORT`), reusing its upstream connections. */
async function startCountingProxy(target: string): Promise<CountingProxy> {
  const [hostname, port] = target.split(':');
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const proxy: CountingProxy = {
    host: '',
    counts: emptyCounts(),
    bytes: 0,
    reset: () => undefined,
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    proxy.counts[classify(req.method ?? '', req.url ?? '')]++;
    proxy.firstAt ??= performance.now();
    const out = request(
      {
        hostname,
        port: Number(port),
        agent,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.on('data', (d: Buffer) => (proxy.bytes += d.length));
        up.on('end', () => (proxy.lastAt = performance.now()));
        up.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.reset = () => {
    proxy.counts = emptyCounts();
    proxy.bytes = 0;
    delete proxy.firstAt;
    delete proxy.lastAt;
  };
  proxy.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    agent.destroy();
  };
  return proxy;
}

/** A gzip layer of random bytes (as real layers are compressed, so that neither tool decides to compress it) and its diff ID. */
function gzipLayer(size: number): { bytes: Buffer; diffId: string } {
  const raw = randomBytes(size);
  return { bytes: gzipSync(raw, { level: 1 }), diffId: sha256(raw) };
}

/**
 * Starts the upstream (Distribution when installed, as in the cache workload; else Sluice) behind a counting
 * proxy and pushes `repos` × `tags` images of four gzip layers each: one shared by every image (2 MiB), one
 * shared by the tags of a repository (512 KiB), and two of each image's own (128 KiB, 16 KiB). Writes the
 * skopeo sync YAML that lists every repository and tag.
 */
export async function prepareSync(dir: string, sizes: SyncSizes, kind: ServerKind): Promise<SyncBench> {
  const upstream = await startServer(kind);
  let proxy: CountingProxy | undefined;
  try {
    proxy = await startCountingProxy(upstream.host);
    const base = gzipLayer(2 * MiB);
    let uniqueBytes = base.bytes.length;
    const images: SyncImage[] = [];
    const jobs: { repo: string; tag: string; layers: { bytes: Buffer; diffId: string }[] }[] = [];
    for (let r = 0; r < sizes.repos; r++) {
      const repoLayer = gzipLayer(512 * KiB);
      uniqueBytes += repoLayer.bytes.length;
      for (let t = 0; t < sizes.tags; t++) {
        const own = [gzipLayer(128 * KiB), gzipLayer(16 * KiB)];
        uniqueBytes += own.reduce((n, l) => n + l.bytes.length, 0);
        jobs.push({ repo: `bench/sync-${r}`, tag: `v${t + 1}`, layers: [base, repoLayer, ...own] });
      }
    }
    // One push at a time: Distribution can lose a blob's link when two sessions upload it to one repository at once.
    for (const j of jobs) {
      const config = Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          config: { Labels: { image: `${j.repo}:${j.tag}` } },
          rootfs: { type: 'layers', diff_ids: j.layers.map((l) => l.diffId) },
        }),
      );
      for (const l of j.layers) await pushBytes(upstream.url, j.repo, l.bytes, sha256(l.bytes));
      await pushBytes(upstream.url, j.repo, config, sha256(config));
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: {
            mediaType: 'application/vnd.oci.image.config.v1+json',
            digest: sha256(config),
            size: config.length,
          },
          layers: j.layers.map((l) => ({
            mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
            digest: sha256(l.bytes),
            size: l.bytes.length,
          })),
        }),
      );
      await putManifest(upstream.url, j.repo, j.tag, manifest, OCI_MANIFEST);
      uniqueBytes += config.length + manifest.length;
      images.push({ repo: j.repo, tag: j.tag, digest: sha256(manifest) });
    }
    const byRepo = new Map<string, string[]>();
    for (const i of images) byRepo.set(i.repo, [...(byRepo.get(i.repo) ?? []), i.tag]);
    const yaml = join(dir, 'sync.yml');
    await writeFile(
      yaml,
      [
        `${proxy.host}:`,
        '  tls-verify: false',
        '  images:',
        ...[...byRepo].map(([repo, tags]) => `    ${repo}: [${tags.map((t) => `"${t}"`).join(', ')}]`),
        '',
      ].join('\n'),
    );
    const p = proxy;
    return {
      upstream,
      proxy: p,
      sizes,
      yaml,
      images,
      uniqueBytes,
      dir,
      stop: async () => {
        await p.close();
        await upstream.stop();
      },
    };
  } catch (e) {
    await proxy?.close();
    await upstream.stop();
    throw e;
  }
}

/** CPU time (user + system) of this process's children that have exited and been waited for, in milliseconds. */
function childrenCpuMs(): number {
  // cutime and cstime follow the parenthesised command name as its 14th and 15th fields, in 100 Hz ticks.
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
}

/** Runs a command to its end; rejects with its output when it exits non-zero or outlives RUN_TIMEOUT_MS. */
function runTool(cmd: string, args: string[]): Promise<{ stdout: string; cpuMs: number }> {
  return new Promise((resolve, reject) => {
    const cpu = childrenCpuMs();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout: out, cpuMs: childrenCpuMs() - cpu });
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code ?? signal}: ${err}${out.slice(-2000)}`));
    });
  });
}

/** The command line of one sync run of `tool` from the bench's YAML into `dest`. */
function syncCommand(
  tool: SyncTool,
  bench: SyncBench,
  dest: BenchServer,
  state: string,
  opts: SyncToolOptions,
): [string, string[]] {
  if (tool === 'skopeo')
    return [
      'skopeo',
      [
        '--insecure-policy',
        'sync',
        '--src',
        'yaml',
        '--dest',
        'docker',
        '--dest-tls-verify=false',
        bench.yaml,
        `${dest.host}/mirror`,
      ],
    ];
  const bin = opts.sluiceBin ?? join(repoRoot, 'bin/sluice.js');
  return [
    process.execPath,
    [
      ...(opts.nodeArgs ?? []),
      bin,
      'sync',
      '--src',
      'yaml',
      bench.yaml,
      '--dest',
      `docker://${dest.host}/mirror`,
      '--dest-tls-verify=false',
      '--state',
      state,
      '--json',
    ],
  ];
}

/** Checks that the destination holds every image under skopeo's name for it (`mirror/<last segment>`), with the upstream's digest. */
async function checkMirrored(bench: SyncBench, dest: BenchServer): Promise<void> {
  await inPool(bench.images, 8, async (img) => {
    const name = `mirror/${img.repo.slice(img.repo.lastIndexOf('/') + 1)}`;
    const res = await fetch(`${dest.url}/v2/${name}/manifests/${img.tag}`, {
      method: 'HEAD',
      headers: { accept: OCI_MANIFEST },
    });
    const digest = res.headers.get('docker-content-digest');
    if (res.status !== 200 || digest !== img.digest)
      throw new Error(
        `sync: ${dest.kind} destination has ${name}:${img.tag} as ${res.status} ${digest}, expected ${img.digest}`,
      );
  });
}

/** Seconds from the first request the proxy saw to the end of the last response: the run without process start and exit. */
function wireSeconds(proxy: CountingProxy): number {
  return proxy.firstAt !== undefined && proxy.lastAt !== undefined ? (proxy.lastAt - proxy.firstAt) / 1000 : 0;
}

/** Sluice's --json summaries must say that a re-sync copied nothing. */
function checkNothingCopied(tool: SyncTool, stdout: string): void {
  if (tool !== 'sluice') return;
  const runs = JSON.parse(stdout) as { copied: string[]; moved: string[] }[];
  const changed = runs.flatMap((r) => [...r.copied, ...r.moved]);
  if (changed.length > 0)
    throw new Error(
      `sync: the re-sync copied ${changed.length} images although nothing had moved: ${changed.slice(0, 5).join(', ')}`,
    );
}

/**
 * One round of the sync workload for `tool`: a fresh, empty destination of the upstream's kind and a fresh
 * state folder; the first sync (timed, then checked digest by digest), then a re-sync with nothing changed
 * upstream (timed, with the requests it sent upstream counted by kind).
 */
export async function syncWorkloads(
  tool: SyncTool,
  bench: SyncBench,
  out: Sample,
  opts: SyncToolOptions = {},
): Promise<void> {
  const dest = await startServer(bench.upstream.kind);
  const state = await mkdtemp(join(bench.dir, `sync-state-${tool}-`));
  try {
    const [cmd, args] = syncCommand(tool, bench, dest, state, opts);
    bench.proxy.reset();
    const serverCpu = bench.upstream.cpuMs() + dest.cpuMs();
    let first = { stdout: '', cpuMs: 0 };
    const firstMs = await timed(async () => (first = await runTool(cmd, args)));
    out['sync.first.servers.cpu'] = (bench.upstream.cpuMs() + dest.cpuMs() - serverCpu) / 1000;
    out['sync.first.upstream'] = bench.proxy.bytes / bench.uniqueBytes;
    out['sync.first.requests'] = Object.values(bench.proxy.counts).reduce((a, b) => a + b, 0);
    out['sync.first.wire'] = wireSeconds(bench.proxy);
    await checkMirrored(bench, dest);

    bench.proxy.reset();
    let again = { stdout: '', cpuMs: 0 };
    const againMs = await timed(async () => (again = await runTool(cmd, args)));
    const c = bench.proxy.counts;
    checkNothingCopied(tool, again.stdout);
    out['sync.first.time'] = firstMs / 1000;
    out['sync.first.cpu'] = first.cpuMs / 1000;
    out['sync.resync.time'] = againMs / 1000;
    out['sync.resync.wire'] = wireSeconds(bench.proxy);
    out['sync.resync.cpu'] = again.cpuMs / 1000;
    out['sync.resync.requests'] = Object.values(c).reduce((a, b) => a + b, 0);
    out['sync.resync.head'] = c['HEAD manifests'];
    out['sync.resync.get.manifests'] = c['GET manifests'];
    out['sync.resync.get.blobs'] = c['GET blobs'];
    out['sync.resync.get.tags'] = c['GET tags'];
    out['sync.resync.other'] = c['GET ping'] + c.other;
    out['sync.resync.bytes'] = bench.proxy.bytes / KiB;
    if (tool === 'sluice') {
      await scheduledResync(bench, out, opts);
    } else {
      // skopeo has no scheduler: each scheduled re-sync is a re-sync run from cron, measured above.
      out['sync.scheduled.time'] = out['sync.resync.time'];
      out['sync.scheduled.wire'] = out['sync.resync.wire'];
      out['sync.scheduled.cpu'] = out['sync.resync.cpu'];
      out['sync.scheduled.requests'] = out['sync.resync.requests'];
    }
  } finally {
    await dest.stop();
    await rm(state, { recursive: true, force: true });
  }
}

/** Seconds between the scheduled runs of the bench's jobs inside `sluice serve`. */
const TICK_SECONDS = 3;

interface JobRecord {
  tags?: Record<string, string>;
  lastRun?: {
    startedAt: string;
    finishedAt: string;
    ok: boolean;
    copied: string[];
    moved: string[];
    errors: { image: string; error: string }[];
  };
}

/** The jobs' state files (what `sluice sync status` reads): the digests mirrored so far and the last run. */
async function jobRecords(root: string, jobs: string[]): Promise<JobRecord[]> {
  const out: JobRecord[] = [];
  for (const j of jobs) {
    const text = await readFile(join(root, 'docker/registry/v2/_sluice/sync', `${j}.json`), 'utf8').catch(
      () => undefined,
    );
    out.push(text ? (JSON.parse(text) as JobRecord) : {});
  }
  return out;
}

/** Polls the jobs' records until `done` says so; on timeout, throws with what the last runs reported. */
async function waitForRecords(
  root: string,
  jobs: string[],
  timeoutMs: number,
  what: string,
  done: (r: JobRecord[]) => boolean,
): Promise<JobRecord[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const records = await jobRecords(root, jobs);
    if (done(records)) return records;
    if (Date.now() > deadline) {
      const errors = records
        .flatMap((r) => r.lastRun?.errors ?? [])
        .slice(0, 3)
        .map((e) => `${e.image}: ${e.error}`);
      throw new Error(
        `sync: the scheduled jobs did not ${what} within ${timeoutMs} ms${errors.length ? ` (errors: ${errors.join('; ')})` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The same jobs as the YAML (one per repository, its five tags) run by `sluice serve` on a schedule, into
 * its own storage: the first scheduled run copies, and one later scheduled run, with nothing changed
 * upstream, is measured from the jobs' own records (earliest start to latest finish), at the proxy and by
 * the server's CPU. This is how a mirror is kept up to date in production; skopeo has no such mode.
 */
async function scheduledResync(bench: SyncBench, out: Sample, opts: SyncToolOptions): Promise<void> {
  const repos = [...new Set(bench.images.map((i) => i.repo))];
  const tags = [...new Set(bench.images.map((i) => i.tag))];
  const jobs = repos.map((r) => r.replace(/[^a-z0-9-]+/g, '-'));
  const mirrors = repos.map(
    (r, i) =>
      `  - {name: ${jobs[i]}, images: ["${bench.proxy.host}/${r}"], tags: {include: [${tags.map((t) => JSON.stringify(t)).join(', ')}]}, cron: "*/${TICK_SECONDS} * * * * *"}`,
  );
  const serve = await startServer('sluice', {
    ...(opts.nodeArgs ? { nodeArgs: opts.nodeArgs } : {}),
    ...(opts.sluiceBin ? { sluiceBin: opts.sluiceBin } : {}),
    extraConfig: [
      `upstreams: {"${bench.proxy.host}": {url: "http://${bench.proxy.host}"}}`,
      'flows: [{images: ["**"]}]',
      'mirrors:',
      ...mirrors,
      '',
    ].join('\n'),
  });
  try {
    // However many runs it takes (the first tick may come while the server starts), wait until every image
    // is mirrored and each job has finished a run without errors.
    await waitForRecords(serve.root, jobs, RUN_TIMEOUT_MS, 'mirror every image', (records) => {
      const have = records.reduce((n, r) => n + Object.keys(r.tags ?? {}).length, 0);
      return (
        have === bench.images.length &&
        records.every((r) => r.lastRun?.ok && Date.parse(r.lastRun.finishedAt) >= Date.parse(r.lastRun.startedAt))
      );
    });
    // Runs start on the tick (every TICK_SECONDS, on the second) and a no-change one lasts a fraction of a
    // second: a second past a tick, none is under way, and the proxy's count starts clean for the next.
    const sinceTick = Date.now() % (TICK_SECONDS * 1000);
    if (sinceTick < 1000) await new Promise((r) => setTimeout(r, 1000 - sinceTick));
    const after = Math.max(...(await jobRecords(serve.root, jobs)).map((r) => Date.parse(r.lastRun!.finishedAt)));
    bench.proxy.reset();
    const cpu = serve.cpuMs();
    const again = (
      await waitForRecords(serve.root, jobs, 60_000, 'run again', (records) =>
        records.every((r) => r.lastRun && Date.parse(r.lastRun.startedAt) > after),
      )
    ).map((r) => r.lastRun!);
    const cpuMs = serve.cpuMs() - cpu;
    const changed = again.flatMap((r) => [...r.copied, ...r.moved]);
    if (changed.length > 0 || !again.every((r) => r.ok))
      throw new Error(
        `sync: a scheduled re-sync changed ${changed.length} images or failed although nothing had moved upstream`,
      );
    out['sync.scheduled.time'] =
      (Math.max(...again.map((r) => Date.parse(r.finishedAt))) -
        Math.min(...again.map((r) => Date.parse(r.startedAt)))) /
      1000;
    out['sync.scheduled.wire'] = wireSeconds(bench.proxy);
    out['sync.scheduled.cpu'] = cpuMs / 1000;
    out['sync.scheduled.requests'] = Object.values(bench.proxy.counts).reduce((a, b) => a + b, 0);
  } finally {
    await serve.stop();
  }
}

/**
 * Runs both tools for one round, alternating which goes first, into the round's samples: Sluice's in the
 * `sluice` column, skopeo's in the `distribution` column (the table's second column is the other tool).
 * Without skopeo only Sluice runs.
 */
export async function syncRound(
  bench: SyncBench,
  round: number,
  samples: Record<ServerKind, Sample[]>,
  withSkopeo: boolean,
  opts: SyncToolOptions = {},
): Promise<void> {
  const tools: SyncTool[] = withSkopeo ? (round % 2 === 0 ? ['sluice', 'skopeo'] : ['skopeo', 'sluice']) : ['sluice'];
  for (const tool of tools) {
    const column: ServerKind = tool === 'sluice' ? 'sluice' : 'distribution';
    // The other workloads made this round's sample already when their server ran; otherwise start one.
    const sample = samples[column][round] ?? {};
    samples[column][round] = sample;
    process.stderr.write(`bench: round ${round + 1}: sync with ${tool}\n`);
    await syncWorkloads(tool, bench, sample, tool === 'sluice' ? opts : {});
  }
}
