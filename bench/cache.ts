// The cache workload (issue 9): Sluice's pull-through cache and Distribution 2.8.2 in proxy mode, side by side
// on one upstream registry that the bench starts and fills, with the upstream's bytes counted at the upstream.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomFile, type DataFile } from './data.js';
import { getManifest, pullBlob, pushBytes, pushMonolithic, putManifest } from './http.js';
import { startServer, type BenchServer, type ServerKind, type ServerOptions } from './servers.js';
import { inPool, timed, type Sample } from './workloads.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const MiB = 1024 * 1024;
/** Blobs a client downloads at once, as dockerd does by default (max-concurrent-downloads 3). */
const PULL_WIDTH = 3;
/** How an image's bytes are split into layers (in 64ths): several layers, the largest half the image. */
const LAYER_SHARES = [1, 3, 4, 8, 16, 32];

/** Sizes for the cache workload. */
export interface CacheSizes {
  /** Bytes of one image's layers together. */
  imageBytes: number;
  /** Distinct images per round: each gives one cold pull, so more images give a steadier median. */
  images: number;
  /** The blob the concurrent cold clients all pull. */
  blobBytes: number;
  clients: number;
  /** The network between the caches and the upstream for the link rows: bandwidth shared by all connections, one-way delay. */
  link: { mibPerSecond: number; delayMs: number };
}

/** The upstream seen through a link with bandwidth and delay (bench/link.ts, a process of its own). */
interface BenchLink {
  url: string;
  child: ChildProcess;
}

async function startLink(upstreamUrl: string, link: CacheSizes['link']): Promise<BenchLink> {
  const script = fileURLToPath(new URL('./link.js', import.meta.url));
  const child = spawn(
    process.execPath,
    [script, new URL(upstreamUrl).port, String(link.mibPerSecond), String(link.delayMs)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout! });
  const [first] = (await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(() => {
      throw new Error('bench: the link process ended before it listened');
    }),
  ])) as [string];
  const port = /^listening (\d+)$/.exec(first)?.[1];
  if (!port) throw new Error(`bench: the link process said ${first}`);
  return { url: `http://127.0.0.1:${port}`, child };
}

/** An image pushed to the upstream, with what a pull of it reads. */
interface BenchImage {
  repo: string;
  tag: string;
  layers: DataFile[];
  config: Buffer;
  manifest: Buffer;
  /** Manifest, config and layers: everything a pull transfers. */
  bytes: number;
}

/** The upstream registry every cache in the run reads from, and a count of the bytes it sent. */
export interface CacheBench {
  upstream: BenchServer;
  sizes: CacheSizes;
  images: BenchImage[];
  fanout: BenchImage;
  /** A small image each cache pulls before anything is measured, so that no measurement pays for a process's first request. */
  warmup: BenchImage;
  /** The same upstream through a link with bandwidth and delay. */
  link: BenchLink;
  /** Bytes the upstream has sent so far (blob and manifest bodies), as the upstream itself counts them. */
  sent(): Promise<number>;
  stop(): Promise<void>;
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

async function makeImage(dir: string, name: string, layerSizes: number[]): Promise<BenchImage> {
  const layers: DataFile[] = [];
  for (const [i, size] of layerSizes.entries()) layers.push(await randomFile(join(dir, `${name}-${i}.bin`), size));
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        digest: l.digest,
        size: l.size,
      })),
    }),
  );
  const bytes = manifest.length + config.length + layers.reduce((a, l) => a + l.size, 0);
  return { repo: `library/${name}`, tag: '1', layers, config, manifest, bytes };
}

async function pushImage(base: string, repo: string, img: BenchImage): Promise<void> {
  for (const l of img.layers) await pushMonolithic(base, repo, l);
  await pushBytes(base, repo, img.config, sha256(img.config));
  await putManifest(base, repo, img.tag, img.manifest, OCI_MANIFEST);
}

/** Pulls an image as a client does: the manifest by tag, then config and layers, a few at a time. */
async function pullImage(base: string, repo: string, img: BenchImage): Promise<void> {
  const m = await getManifest(base, repo, img.tag, OCI_MANIFEST);
  if (!m.bytes.equals(img.manifest))
    throw new Error(`${base}/${repo}:${img.tag}: the manifest differs from the one pushed upstream`);
  const blobs = [{ digest: sha256(img.config), size: img.config.length }, ...img.layers];
  await inPool(blobs, PULL_WIDTH, async (b) => {
    await pullBlob(base, repo, b.digest, b.size);
  });
}

/** Bytes in a Distribution access-log line (combined format: `"GET /v2/... HTTP/1.1" 200 12345 ...`). */
function accessLogBytes(line: string): number {
  const m = /"[A-Z]+ [^"]* HTTP\/[\d.]+" \d{3} (\d+)/.exec(line);
  return m ? Number(m[1]) : 0;
}

/** Sluice's own count of blob and manifest bytes it sent, from its metrics. */
async function sluiceBytesSent(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n'))
    if (line.startsWith('sluice_http_bytes_sent_total{')) n += Number(line.split(' ').pop());
  return n;
}

/**
 * Starts the upstream (Distribution when installed, so neither cache is measured against itself) and pushes
 * the images: `sizes.images` images of several layers, and one image of a single large blob for the
 * concurrent clients. `dir` holds the random data.
 */
export async function prepareCache(dir: string, sizes: CacheSizes, kind: ServerKind): Promise<CacheBench> {
  let logged = 0;
  const upstream = await startServer(
    kind,
    kind === 'distribution' ? { accessLog: (line) => (logged += accessLogBytes(line)) } : {},
  );
  try {
    const shares = LAYER_SHARES.reduce((a, b) => a + b, 0);
    const layerSizes = LAYER_SHARES.map((s) => Math.round((sizes.imageBytes * s) / shares));
    const images: BenchImage[] = [];
    for (let i = 0; i < sizes.images; i++) {
      const img = await makeImage(dir, `bench-cache-${i}`, layerSizes);
      await pushImage(upstream.url, img.repo, img);
      images.push(img);
    }
    const fanout = await makeImage(dir, 'bench-fanout', [sizes.blobBytes]);
    await pushImage(upstream.url, fanout.repo, fanout);
    const warmup = await makeImage(dir, 'bench-warmup', [64 * 1024, 64 * 1024]);
    await pushImage(upstream.url, warmup.repo, warmup);
    const link = await startLink(upstream.url, sizes.link);
    return {
      upstream,
      sizes,
      images,
      fanout,
      warmup,
      link,
      sent: async () => (kind === 'distribution' ? logged : sluiceBytesSent(upstream.url)),
      stop: async () => {
        link.child.kill();
        await upstream.stop();
      },
    };
  } catch (e) {
    await upstream.stop();
    throw e;
  }
}

/** The cache's config: Sluice's upstreams and flows, or Distribution's `proxy:` block, both on the bench's upstream. */
function cacheConfig(kind: ServerKind, upstreamUrl: string): string {
  if (kind === 'distribution') return `proxy: {remoteurl: "${upstreamUrl}"}\n`;
  return `upstreams: {docker.io: {url: "${upstreamUrl}", ttl: 1h, timeout: 30s}}\nflows: [{images: ["docker.io/library/*"]}]\n`;
}

function blobData(root: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
}

/**
 * The upstream's byte count once it has stayed still for `quietMs`. Read before a measurement too: an
 * access-log line arrives a moment after the client has its last byte.
 */
async function quietBytes(bench: CacheBench, quietMs = 200, deadline = Date.now() + 30_000): Promise<number> {
  let last = await bench.sent();
  let since = Date.now();
  while (Date.now() < deadline) {
    await sleep(100);
    const now = await bench.sent();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return now;
  }
  process.stderr.write('bench: cache: upstream traffic had not settled after 30 s; counting what it sent so far\n');
  return last;
}

/**
 * The upstream bytes once the cache has finished with upstream: its client may be served before the cache
 * has stored what it fetched (Distribution stores in a goroutine of its own), so wait until every blob is in
 * the cache's storage (both use Distribution's layout), then until the upstream's count stays still.
 */
async function storedBytes(bench: CacheBench, cacheRoot: string, digests: string[]): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (const d of digests) {
    while (
      Date.now() < deadline &&
      !(await stat(blobData(cacheRoot, d)).then(
        () => true,
        () => false,
      ))
    )
      await sleep(50);
  }
  return quietBytes(bench, 500, deadline);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * One round of the cache workload against a fresh cache of `kind`: per image a direct pull from upstream
 * and a cold pull through the cache, then warm pulls against pulls of a local image of the same size, then
 * `clients` concurrent cold GETs of one large blob. Upstream bytes are counted at the upstream.
 */
export async function cacheWorkloads(
  kind: ServerKind,
  bench: CacheBench,
  out: Sample,
  opts: ServerOptions = {},
): Promise<void> {
  const cache = await startServer(kind, { ...opts, extraConfig: cacheConfig(kind, bench.upstream.url) });
  try {
    // Modules loaded, code compiled, connections open: the measurements below are of a running cache.
    await pullImage(bench.upstream.url, bench.warmup.repo, bench.warmup);
    await pullImage(cache.url, bench.warmup.repo, bench.warmup);
    const direct: number[] = [];
    const cold: number[] = [];
    let coldBytes = 0;
    let coldCpu = 0;
    let imageBytes = 0;
    for (const img of bench.images) {
      direct.push(await timed(() => pullImage(bench.upstream.url, img.repo, img)));
      const before = await quietBytes(bench);
      const cpu = cache.cpuMs();
      cold.push(await timed(() => pullImage(cache.url, img.repo, img)));
      coldBytes +=
        (await storedBytes(
          bench,
          cache.root,
          img.layers.map((l) => l.digest),
        )) - before;
      // Counted once the cache has stored everything: storing is part of the cost of a cold pull.
      coldCpu += cache.cpuMs() - cpu;
      imageBytes += img.bytes;
    }

    // The local baseline is the same software serving an image it holds: Sluice, a repository pushed to the
    // cache process itself; Distribution in proxy mode refuses pushes, so the plain Distribution upstream.
    const local = { url: bench.upstream.url, repo: bench.images[0]!.repo };
    if (kind === 'sluice') {
      local.url = cache.url;
      local.repo = 'bench/local';
      await pushImage(cache.url, local.repo, bench.images[0]!);
    }
    const warm: number[] = [];
    const localPulls: number[] = [];
    const beforeWarm = await quietBytes(bench);
    for (const img of bench.images) {
      warm.push(await timed(() => pullImage(cache.url, img.repo, img)));
      localPulls.push(await timed(() => pullImage(local.url, local.repo, bench.images[0]!)));
    }
    // The local pulls above read the upstream when it is the baseline: count warm traffic from a pull of its own.
    const warmBytes = kind === 'sluice' ? (await quietBytes(bench)) - beforeWarm : await warmTraffic(bench, cache.url);

    const fan = bench.fanout;
    const blob = fan.layers[0]!;
    // Each client has the manifest already (it names the blob); only the blob is timed and counted.
    await getManifest(cache.url, fan.repo, fan.tag, OCI_MANIFEST);
    const beforeFan = await quietBytes(bench);
    const fanCpu = cache.cpuMs();
    const fanMs = await timed(() =>
      Promise.all(
        Array.from({ length: bench.sizes.clients }, () => pullBlob(cache.url, fan.repo, blob.digest, blob.size)),
      ),
    );
    const fanBytes = (await storedBytes(bench, cache.root, [blob.digest])) - beforeFan;
    const fanCpuMs = cache.cpuMs() - fanCpu;

    out['cache.direct.pull'] = median(direct);
    out['cache.cold.pull'] = median(cold);
    out['cache.cold.ratio'] = median(cold) / median(direct);
    out['cache.cold.upstream'] = coldBytes / imageBytes;
    out['cache.cold.cpu'] = coldCpu / (imageBytes / MiB);
    out['cache.warm.pull'] = median(warm);
    out['cache.local.pull'] = median(localPulls);
    out['cache.warm.ratio'] = median(warm) / median(localPulls);
    out['cache.warm.upstream'] = warmBytes / imageBytes;
    out['cache.fanout.time'] = fanMs;
    out['cache.fanout.upstream'] = fanBytes / blob.size;
    out['cache.fanout.cpu'] = fanCpuMs / ((blob.size * bench.sizes.clients) / MiB);
  } finally {
    await cache.stop();
  }
}

/** Upstream bytes for one more warm pull of every image, with nothing else reading the upstream meanwhile. */
async function warmTraffic(bench: CacheBench, cacheUrl: string): Promise<number> {
  const before = await quietBytes(bench);
  for (const img of bench.images) await pullImage(cacheUrl, img.repo, img);
  return (await quietBytes(bench)) - before;
}

/**
 * The cold rows again with the upstream behind a link of limited bandwidth and some delay (bench.link), as a
 * cache meets Docker Hub: a direct pull through the link against a cold pull through a fresh cache whose
 * upstream is the link, and the concurrent cold clients on one blob. On loopback a cold pull is bound by
 * the CPU that client, cache and upstream share; over a link it is bound by the link, which is what a cache
 * that streams while it stores should cost nothing extra on.
 */
export async function cacheLinkWorkloads(
  kind: ServerKind,
  bench: CacheBench,
  out: Sample,
  opts: ServerOptions = {},
): Promise<void> {
  const link = bench.link.url;
  const cache = await startServer(kind, { ...opts, extraConfig: cacheConfig(kind, link) });
  try {
    await pullImage(link, bench.warmup.repo, bench.warmup);
    await pullImage(cache.url, bench.warmup.repo, bench.warmup);
    const direct: number[] = [];
    const cold: number[] = [];
    for (const img of bench.images) {
      direct.push(await timed(() => pullImage(link, img.repo, img)));
      cold.push(await timed(() => pullImage(cache.url, img.repo, img)));
      // Distribution stores in the background over the same link: let it finish before the next measurement.
      await storedBytes(
        bench,
        cache.root,
        img.layers.map((l) => l.digest),
      );
    }
    const fan = bench.fanout;
    const blob = fan.layers[0]!;
    const fanDirect = await timed(() => pullBlob(link, fan.repo, blob.digest, blob.size));
    await getManifest(cache.url, fan.repo, fan.tag, OCI_MANIFEST);
    const fanMs = await timed(() =>
      Promise.all(
        Array.from({ length: bench.sizes.clients }, () => pullBlob(cache.url, fan.repo, blob.digest, blob.size)),
      ),
    );
    await storedBytes(bench, cache.root, [blob.digest]);
    out['cache.link.direct'] = median(direct);
    out['cache.link.cold'] = median(cold);
    out['cache.link.ratio'] = median(cold) / median(direct);
    out['cache.link.fanout'] = fanMs;
    out['cache.link.fanout.ratio'] = fanMs / fanDirect;
  } finally {
    await cache.stop();
  }
}
