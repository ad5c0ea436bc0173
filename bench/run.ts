// `npm run bench [-- --quick] [-- --rounds N --out FILE --workloads blob,manifest,listing,skopeo,cache,sync,gc,events --servers sluice,distribution
//   --cpu-prof DIR --sluice-bin PATH --manifest-seconds S --listing-size N --gc-repos N --gc-blobs N]`:
// Sluice and Distribution side by side on 127.0.0.1, fresh processes and storage each round, medians reported.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CLI_METRICS, cliRound, prepareCli, type CliBench } from './cli.js';
import { cacheLinkWorkloads, cacheWorkloads, prepareCache, type CacheBench } from './cache.js';
import {
  PASSTHROUGH_METRICS,
  passthroughSizes,
  passthroughWorkloads,
  preparePassthrough,
  type PassthroughBench,
} from './passthrough.js';
import { logSizes, randomFile, writeImageLayout } from './data.js';
import { EVENTS_METRICS, eventsInProcess, eventsRound, prepareEvents, type EventsBench } from './events.js';
import { canRunGc, GC_METRICS, gcSizes, gcWorkloads, prepareGc, type GcBench } from './gc.js';
import { machine, metricCatalog, summarize, table, type BenchResults } from './report.js';
import { hasCommand, startServer, type ServerKind } from './servers.js';
import { prepareS3, S3_METRICS, s3Sizes, s3Workloads, type S3Bench } from './s3.js';
import { prepareSync, syncRound, type SyncBench } from './sync.js';
import { prepareTrust, trustInProcess, trustMetrics, trustRound, type TrustBench } from './trust.js';
import { UI_METRICS, uiRound } from './ui.js';
import { KEYLESS_METRICS, keylessInProcess } from './trust-keyless.js';
import {
  blobWorkloads,
  listingWorkloads,
  manifestWorkloads,
  skopeoWorkloads,
  type BenchPlan,
  type Sample,
} from './workloads.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const GROUPS = [
  'blob',
  'manifest',
  'listing',
  'skopeo',
  'cache',
  's3',
  'sync',
  'passthrough',
  'trust',
  'gc',
  'cli',
  'events',
  'ui',
] as const;
type Group = (typeof GROUPS)[number];

const USAGE = `usage: npm run bench -- [--quick] [--rounds N] [--out FILE] [--workloads ${GROUPS.join(',')}]
  [--servers sluice,distribution] [--cpu-prof DIR] [--sluice-bin PATH] [--manifest-seconds S] [--listing-size N] [--link-rate MIB_S] [--link-rtt MS]
  [--gc-repos N] [--gc-blobs N] [--gc-dir DIR]
(see bench/README.md)`;

function parseCommandLine(): ReturnType<typeof parseOptions> {
  try {
    return parseOptions();
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
}

const parseOptions = () =>
  parseArgs({
    options: {
      help: { type: 'boolean', short: 'h', default: false },
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      out: { type: 'string' },
      workloads: { type: 'string' },
      servers: { type: 'string' },
      'cpu-prof': { type: 'string' },
      // Another build's bin/sluice.js, to measure a change against the build before it.
      'sluice-bin': { type: 'string' },
      // Overrides of single sizes, for focused before/after runs.
      'manifest-seconds': { type: 'string' },
      'listing-size': { type: 'string' },
      // The cache's link rows: the upstream's bandwidth (MiB/s) and round trip (ms).
      'link-rate': { type: 'string' },
      'link-rtt': { type: 'string' },
      // The gc workload's root: repositories and blobs written into the layout.
      'gc-repos': { type: 'string' },
      'gc-blobs': { type: 'string' },
      // Where the gc roots are written and copied (default: the system's temporary directory).
      'gc-dir': { type: 'string' },
    },
  });

const { values: args } = parseCommandLine();
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const quick = args.quick ?? false;
const rounds = Number(args.rounds ?? (quick ? 1 : 3));
const out = resolve(args.out ?? fileURLToPath(new URL('../../bench/results/latest.json', import.meta.url)));
const groups = new Set<Group>((args.workloads?.split(',') ?? [...GROUPS]) as Group[]);
for (const g of groups) {
  if (!GROUPS.includes(g)) {
    process.stderr.write(`bench: unknown workload group ${g} (one of ${GROUPS.join(', ')})\n${USAGE}\n`);
    process.exit(2);
  }
}
const haveDistribution = hasCommand('docker-registry');
const haveSkopeo = hasCommand('skopeo');
const wanted = (args.servers?.split(',') ?? ['sluice', 'distribution']) as ServerKind[];
const kinds = wanted.filter((k) => k === 'sluice' || (k === 'distribution' && haveDistribution));
if (!haveDistribution)
  process.stderr.write('bench: docker-registry (Distribution) is not installed; measuring Sluice alone\n');
if (!haveSkopeo && groups.has('skopeo')) {
  process.stderr.write('bench: skopeo is not installed; skipping the skopeo workload\n');
  groups.delete('skopeo');
}
if (groups.has('gc') && !canRunGc()) {
  process.stderr.write('bench: /usr/bin/time (GNU time) is not installed; skipping the gc workload\n');
  groups.delete('gc');
}
if (!haveSkopeo && groups.has('sync'))
  process.stderr.write('bench: skopeo is not installed; the sync workload runs Sluice alone\n');

const sizes = quick
  ? {
      bigBlob: 8 * MiB,
      chunkSize: 1 * MiB,
      parallelBlob: 2 * MiB,
      parallelCount: 4,
      manifestSeconds: 1,
      tags: 200,
      repos: 200,
      layers: logSizes(20, 1024, 1 * MiB),
    }
  : {
      bigBlob: GiB,
      chunkSize: 32 * MiB,
      parallelBlob: 256 * MiB,
      parallelCount: 4,
      manifestSeconds: 10,
      tags: 10_000,
      repos: 10_000,
      layers: logSizes(20, 1024, 100 * MiB),
    };
// The link rows put the upstream behind 40 MiB/s (about 335 Mbit/s) and a 20 ms round trip: an office's way to Docker Hub.
const cacheLink = { mibPerSecond: Number(args['link-rate'] ?? 40), delayMs: Number(args['link-rtt'] ?? 20) / 2 };
const cacheSizes = quick
  ? { imageBytes: 4 * MiB, images: 1, blobBytes: 4 * MiB, clients: 8, link: cacheLink }
  : { imageBytes: 64 * MiB, images: 3, blobBytes: 64 * MiB, clients: 8, link: cacheLink };
// 10 repositories × 5 tags, as issue 10 asks; --quick keeps it to a few seconds.
const syncSizes = quick ? { repos: 3, tags: 2 } : { repos: 10, tags: 5 };
if (args['manifest-seconds']) sizes.manifestSeconds = Number(args['manifest-seconds']);
if (args['listing-size']) sizes.tags = sizes.repos = Number(args['listing-size']);
const gcBenchSizes = gcSizes(quick, args['gc-repos'], args['gc-blobs']);
const connections = [1, 16, 64];

function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

const work = await mkdtemp(join(tmpdir(), 'sluice-bench-data-'));
let cacheBench: CacheBench | undefined;
let s3Bench: S3Bench | undefined;
let syncBench: SyncBench | undefined;
let passthroughBench: PassthroughBench | undefined;
let trustBench: TrustBench | undefined;
let gcBench: GcBench | undefined;
let cliBench: CliBench | undefined;
let eventsBench: EventsBench | undefined;
try {
  log(`generating random data in ${work}`);
  const bigBlob = await randomFile(join(work, 'big.bin'), sizes.bigBlob);
  const parallelBlobs = [];
  for (let i = 0; i < sizes.parallelCount; i++)
    parallelBlobs.push(await randomFile(join(work, `par-${i}.bin`), sizes.parallelBlob));
  const imageLayout = join(work, 'image');
  const image = groups.has('skopeo') ? await writeImageLayout(imageLayout, sizes.layers) : { totalBytes: 0 };
  const plan: BenchPlan = {
    bigBlob,
    chunkSize: sizes.chunkSize,
    parallelBlobs,
    manifestSeconds: sizes.manifestSeconds,
    connections,
    tagCount: sizes.tags,
    repoCount: sizes.repos,
    imageLayout,
    imageBytes: image.totalBytes,
    skopeo: groups.has('skopeo'),
  };
  if (groups.has('cache')) {
    const upstreamKind = haveDistribution ? 'distribution' : 'sluice';
    log(`cache: filling the upstream (${upstreamKind})`);
    cacheBench = await prepareCache(work, cacheSizes, upstreamKind);
  }
  if (groups.has('s3')) {
    log('s3: starting s3rver and writing the blob once');
    s3Bench = await prepareS3(work, s3Sizes(quick));
  }
  if (groups.has('sync')) {
    const upstreamKind = haveDistribution ? 'distribution' : 'sluice';
    log(`sync: filling the upstream (${upstreamKind}) with ${syncSizes.repos} repositories × ${syncSizes.tags} tags`);
    syncBench = await prepareSync(work, syncSizes, upstreamKind);
  }
  if (groups.has('passthrough')) {
    log('passthrough: starting two dockerds and loading the host images');
    passthroughBench = await preparePassthrough(work, passthroughSizes(quick));
    if (!passthroughBench)
      log('passthrough: dockerd or the docker CLI is not installed; skipping the passthrough workload');
  }
  if (groups.has('trust') && kinds.includes('sluice')) trustBench = await prepareTrust(work);
  if (groups.has('cli')) {
    log('cli: starting a source and a destination registry with one small image');
    cliBench = await prepareCli(work, haveDistribution ? 'distribution' : 'sluice', quick ? 3 : 10);
  }
  if (groups.has('events')) eventsBench = await prepareEvents();
  if (groups.has('gc'))
    gcBench = await prepareGc(args['gc-dir'] ? resolve(args['gc-dir']) : tmpdir(), gcBenchSizes, log);
  // The cache, s3, sync, passthrough, trust, gc, cli, events and ui workloads start servers of their own; the plain server is started only for the others.
  const own = new Set<Group>(['cache', 's3', 'sync', 'passthrough', 'trust', 'gc', 'cli', 'events', 'ui']);
  const plainGroups = [...groups].filter((g) => !own.has(g));

  const samples: Record<ServerKind, Sample[]> = { sluice: [], distribution: [] };
  /** This round's sample of a column, made on first use. */
  const sampleOf = (kind: ServerKind, round: number): Sample => {
    const sample = samples[kind][round] ?? {};
    samples[kind][round] = sample;
    return sample;
  };
  for (let round = 0; round < rounds; round++) {
    // Alternate which server goes first so neither always runs on a warmer page cache.
    const order = round % 2 === 0 ? kinds : [...kinds].reverse();
    for (const kind of order) {
      log(`round ${round + 1}/${rounds}: ${kind}`);
      const profDir = args['cpu-prof'] ? resolve(args['cpu-prof']) : undefined;
      const serverOptions = {
        ...(kind === 'sluice' && profDir ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] } : {}),
        ...(args['sluice-bin'] ? { sluiceBin: resolve(args['sluice-bin']) } : {}),
      };
      const sample: Sample = {};
      if (plainGroups.length > 0) {
        const server = await startServer(kind, serverOptions);
        try {
          if (groups.has('blob')) await blobWorkloads(server, plan, sample);
          if (groups.has('manifest')) await manifestWorkloads(server, plan, sample);
          if (groups.has('listing')) await listingWorkloads(server, plan, sample);
          if (groups.has('skopeo')) await skopeoWorkloads(server, plan, sample);
        } finally {
          await server.stop();
        }
      }
      if (cacheBench) {
        await cacheWorkloads(kind, cacheBench, sample, serverOptions);
        await cacheLinkWorkloads(kind, cacheBench, sample, serverOptions);
      }
      if (s3Bench) await s3Workloads(kind, s3Bench, sample, serverOptions);
      if (gcBench) await gcWorkloads(kind, gcBench, sample, serverOptions, log);
      if (eventsBench) await eventsRound(kind, eventsBench, round, sizes.manifestSeconds, sample, serverOptions);
      samples[kind].push(sample);
    }
    if (syncBench) {
      await syncRound(syncBench, round, samples, haveSkopeo, {
        ...(args['cpu-prof'] ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${resolve(args['cpu-prof'])}`] } : {}),
        ...(args['sluice-bin'] ? { sluiceBin: resolve(args['sluice-bin']) } : {}),
      });
    }
    // Sluice with and without a trust rule, side by side: the Distribution column holds the latter.
    if (trustBench) {
      log(`round ${round + 1}/${rounds}: trust`);
      const profDir = args['cpu-prof'] ? resolve(args['cpu-prof']) : undefined;
      await trustRound(
        trustBench,
        round,
        connections,
        sizes.manifestSeconds,
        sampleOf('sluice', round),
        sampleOf('distribution', round),
        {
          ...(profDir ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] } : {}),
          ...(args['sluice-bin'] ? { sluiceBin: resolve(args['sluice-bin']) } : {}),
        },
      );
      await trustInProcess(trustBench, sizes.manifestSeconds, samples.sluice[round]!, samples.distribution[round]!);
      await keylessInProcess(sizes.manifestSeconds, samples.sluice[round]!, samples.distribution[round]!);
    }
    // Start-up and idle memory: each Sluice command beside the tool it is compared with (named in each row).
    if (cliBench) {
      log(`round ${round + 1}/${rounds}: cli`);
      await cliRound(
        cliBench,
        sampleOf('sluice', round),
        sampleOf('distribution', round),
        args['sluice-bin'] ? { sluiceBin: resolve(args['sluice-bin']) } : {},
      );
    }
    // Sluice with both endpoints against Sluice with none, in one process: the Distribution column holds the latter.
    if (eventsBench && kinds.includes('sluice')) {
      log(`round ${round + 1}/${rounds}: events in process`);
      await eventsInProcess(
        eventsBench,
        sizes.manifestSeconds,
        sampleOf('sluice', round),
        sampleOf('distribution', round),
      );
    }
    // The web UI's API and pages over 10,000 repositories and 10,000 tags (1,000 each with --quick): Sluice only.
    if (groups.has('ui') && kinds.includes('sluice')) {
      log(`round ${round + 1}/${rounds}: ui`);
      await uiRound(sampleOf('sluice', round), quick ? { repos: 1000, tags: 1000 } : undefined, log);
    }
    // Daemons, not registries: measured once a round, the box's save|load per image in the Distribution column.
    if (passthroughBench) {
      log(`round ${round + 1}/${rounds}: passthrough`);
      passthroughWorkloads(passthroughBench, sampleOf('sluice', round), sampleOf('distribution', round));
    }
  }

  const metrics = [
    ...metricCatalog(connections),
    ...S3_METRICS,
    ...PASSTHROUGH_METRICS,
    ...trustMetrics(connections),
    ...KEYLESS_METRICS,
    ...GC_METRICS,
    ...CLI_METRICS,
    ...EVENTS_METRICS,
    ...UI_METRICS,
  ].filter((m) => samples.sluice.some((s) => m.id in s) || samples.distribution.some((s) => m.id in s));
  const rows = summarize(metrics, samples);
  const results: BenchResults = {
    date: new Date().toISOString(),
    quick,
    rounds,
    machine: machine(),
    servers: { sluice: kinds.includes('sluice'), distribution: kinds.includes('distribution') },
    sizes: {
      bigBlobBytes: sizes.bigBlob,
      chunkBytes: sizes.chunkSize,
      parallelBlobBytes: sizes.parallelBlob,
      parallelCount: sizes.parallelCount,
      manifestSeconds: sizes.manifestSeconds,
      connections,
      tags: sizes.tags,
      repositories: sizes.repos,
      imageLayerBytes: sizes.layers,
      cacheImageBytes: cacheSizes.imageBytes,
      cacheImages: cacheSizes.images,
      cacheBlobBytes: cacheSizes.blobBytes,
      cacheClients: cacheSizes.clients,
      cacheLinkMiBPerSecond: cacheLink.mibPerSecond,
      cacheLinkRttMs: cacheLink.delayMs * 2,
      s3BlobBytes: s3Sizes(quick).blobBytes,
      s3ChunkBytes: s3Sizes(quick).chunkBytes,
      syncRepositories: syncSizes.repos,
      syncTags: syncSizes.tags,
      gcRepositories: gcBenchSizes.repos,
      gcBlobs: gcBenchSizes.blobs,
      gcSmallFraction: gcBenchSizes.smallFraction,
      gcServeSeconds: gcBenchSizes.serveSeconds,
      gcServeConnections: gcBenchSizes.serveConnections,
    },
    results: rows,
  };
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(results, null, 2) + '\n');
  const m = results.machine;
  process.stdout.write(
    `Sluice vs Distribution 2.8.2 — ${results.date}, ${m.cores} cores (${m.cpu}), ${Math.round(m.memoryBytes / GiB)} GiB, Node ${m.node}, ` +
      `${rounds} round(s)${quick ? ', --quick sizes' : ''}; medians${cacheBench ? `; cache rows: Distribution in proxy mode, upstream ${cacheBench.upstream.kind}` : ''}` +
      `${syncBench ? `; sync rows: the Distribution column is skopeo sync, ${syncSizes.repos} repositories × ${syncSizes.tags} tags, upstream ${syncBench.upstream.kind}` : ''}\n\n${table(rows)}\n\nJSON: ${out}\n`,
  );
} finally {
  await cacheBench?.stop();
  await s3Bench?.stop();
  await syncBench?.stop();
  await passthroughBench?.stop();
  await gcBench?.stop();
  await cliBench?.stop();
  await eventsBench?.stop();
  await rm(work, { recursive: true, force: true });
}
