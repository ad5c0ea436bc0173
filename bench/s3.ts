// The s3 workload (issue 13): Sluice and Distribution 2.8.2 each on its own rootdirectory of one s3rver bucket:
// blob push and pull through one node, two nodes over the same root serving pulls at once, and the nodes' RSS.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { randomFile, type DataFile } from './data.js';
import { pullBlob, pushBytes, pushChunked, pushMonolithic } from './http.js';
import type { MetricInfo } from './report.js';
import { procCpuMs, sampleRss, startServer, type BenchServer, type ServerKind, type ServerOptions } from './servers.js';
import { timed, type Sample } from './workloads.js';

const MiB = 1024 * 1024;
const ACCESS = 'S3RVER';

/** Sizes for the s3 workload. */
export interface S3Sizes {
  /** The blob pushed and pulled: large enough to matter, bounded because s3rver writes every byte to files (twice for multipart). */
  blobBytes: number;
  chunkBytes: number;
  /** Concurrent GETs of the blob on each of the two nodes. */
  pullsPerNode: number;
}

/** Sizes of a full run and of --quick. */
export function s3Sizes(quick: boolean): S3Sizes {
  return quick
    ? { blobBytes: 8 * MiB, chunkBytes: 2 * MiB, pullsPerNode: 2 }
    : { blobBytes: 256 * MiB, chunkBytes: 16 * MiB, pullsPerNode: 2 };
}

/** The rows of the s3 workload, in table order. */
export const S3_METRICS: MetricInfo[] = [
  { id: 's3.push.monolithic', label: 's3: blob push, monolithic PUT', unit: 'MiB/s', better: 'higher' },
  { id: 's3.push.chunked', label: 's3: blob push, chunked PATCH', unit: 'MiB/s', better: 'higher' },
  { id: 's3.pull.single', label: 's3: blob pull, 1 node, 1 stream', unit: 'MiB/s', better: 'higher' },
  { id: 's3.pull.cpu', label: 's3: node CPU per MiB pulled, 1 stream', unit: 'ms/MiB', better: 'lower' },
  { id: 's3.pull.twonodes', label: 's3: blob pull, 2 nodes at once, aggregate', unit: 'MiB/s', better: 'higher' },
  { id: 's3.s3rver.busy', label: 's3: s3rver CPU during the 2-node pull', unit: '% core', better: 'lower' },
  { id: 's3.rss.push', label: 's3: node RSS during pushes (highest)', unit: 'MiB', better: 'lower' },
  { id: 's3.rss.pull', label: 's3: node RSS during pulls (highest, first node)', unit: 'MiB', better: 'lower' },
  {
    id: 's3.push.parallel',
    label: 's3: blob push, 4 in parallel (monolithic), aggregate',
    unit: 'MiB/s',
    better: 'higher',
  },
  { id: 's3.rss.push4', label: 's3: node RSS during 4 parallel pushes (highest)', unit: 'MiB', better: 'lower' },
];

/** The s3rver child every round's nodes share, and the blob they move. */
export interface S3Bench {
  endpoint: string;
  bucket: string;
  sizes: S3Sizes;
  blob: DataFile;
  /** CPU the s3rver process has used so far, in milliseconds. */
  s3rverCpuMs(): number;
  stop(): Promise<void>;
}

const childJs = fileURLToPath(new URL('./s3rver-child.js', import.meta.url));

/**
 * s3rver in a child process, with the multipart calls Distribution's driver needs and Sluice's does not use
 * (s3rver-multipart.ts): Distribution 2.8.2 resumes every upload with ListMultipartUploads, which plain
 * s3rver answers 501, so without them no push to it succeeds.
 */
async function startS3rver(bucket: string): Promise<{ child: ChildProcess; endpoint: string }> {
  const child = spawn(process.execPath, [childJs, bucket, '--multipart'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const lines = createInterface({ input: child.stdout! });
  const first = await Promise.race([
    once(lines, 'line').then(([l]) => l as string),
    once(child, 'exit').then(() => {
      throw new Error(`s3rver child exited: ${err}`);
    }),
  ]);
  lines.close();
  return { child, endpoint: (JSON.parse(first) as { endpoint: string }).endpoint };
}

/** The `storage:` block of a node on `root` of the bench's bucket (Distribution's keys, which Sluice reads as they are). */
function storageYaml(kind: ServerKind, b: { endpoint: string; bucket: string }, root: string): string {
  const s3 = `{accesskey: ${ACCESS}, secretkey: ${ACCESS}, region: us-east-1, regionendpoint: "${b.endpoint}", bucket: ${b.bucket}, rootdirectory: ${root}, secure: false, v4auth: true}`;
  // Distribution's s3 driver answers blob GETs with a redirect to the bucket by default; bytes through the node are what is compared.
  return kind === 'distribution'
    ? `{s3: ${s3}, delete: {enabled: true}, redirect: {disable: true}}`
    : `{s3: ${s3}, delete: {enabled: true}}`;
}

function nodeOptions(kind: ServerKind, b: S3Bench, root: string, opts: ServerOptions): ServerOptions {
  // Distribution 2.8.2's s3 driver panics at start when AWS_CA_BUNDLE is set (it may be, here); empty counts as unset.
  return {
    ...opts,
    storage: storageYaml(kind, b, root),
    ...(kind === 'distribution' ? { env: { ...opts.env, AWS_CA_BUNDLE: '' } } : {}),
  };
}

/** Starts the s3rver child and writes the random blob. */
export async function prepareS3(dir: string, sizes: S3Sizes): Promise<S3Bench> {
  const bucket = 'bench';
  const { child, endpoint } = await startS3rver(bucket);
  const stopChild = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    const blob = await randomFile(join(dir, 's3-blob.bin'), sizes.blobBytes);
    return { endpoint, bucket, sizes, blob, s3rverCpuMs: () => procCpuMs(child.pid!), stop: stopChild };
  } catch (e) {
    await stopChild();
    throw e;
  }
}

/** Pushes a few bytes: each node's first request to the bucket, so no measurement pays for connecting (or loading an SDK). */
async function probe(s: BenchServer): Promise<void> {
  const bytes = Buffer.from('sluice bench s3 probe\n');
  await pushBytes(s.url, 'bench/probe', bytes, `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
}

let rootCount = 0;

/** One round of the s3 workload for one server kind: push, pull on one node, pull on two at once. */
export async function s3Workloads(kind: ServerKind, b: S3Bench, out: Sample, opts: ServerOptions = {}): Promise<void> {
  const root = `${kind}-${++rootCount}`;
  const size = b.blob.size;
  const nodeOpts = nodeOptions(kind, b, root, opts);
  const a = await startServer(kind, nodeOpts);
  let second: BenchServer | undefined;
  try {
    const repo = 'bench/s3';
    await probe(a);
    const push = await sampleRss(a, async () => {
      out['s3.push.monolithic'] = size / MiB / ((await timed(() => pushMonolithic(a.url, repo, b.blob))) / 1000);
      out['s3.push.chunked'] =
        size / MiB / ((await timed(() => pushChunked(a.url, 'bench/s3-chunked', b.blob, b.sizes.chunkBytes))) / 1000);
    });
    out['s3.rss.push'] = push.maxRss / MiB;
    // The blob four times at once into four repositories: four upload sessions, each with its own parts in flight.
    const par = await sampleRss(a, () =>
      timed(() => Promise.all([0, 1, 2, 3].map((i) => pushMonolithic(a.url, `bench/s3-par-${i}`, b.blob)))),
    );
    out['s3.push.parallel'] = (size * 4) / MiB / (par.value / 1000);
    out['s3.rss.push4'] = par.maxRss / MiB;
    const cpu = a.cpuMs();
    const single = await sampleRss(a, () => timed(() => pullBlob(a.url, repo, b.blob.digest, size)));
    out['s3.pull.single'] = size / MiB / (single.value / 1000);
    out['s3.pull.cpu'] = (a.cpuMs() - cpu) / (size / MiB);

    second = await startServer(kind, nodeOpts);
    const nodes = [a, second];
    const s3rverCpu = b.s3rverCpuMs();
    const both = await sampleRss(a, () =>
      timed(() =>
        Promise.all(
          nodes.flatMap((n) =>
            Array.from({ length: b.sizes.pullsPerNode }, () => pullBlob(n.url, repo, b.blob.digest, size)),
          ),
        ),
      ),
    );
    out['s3.pull.twonodes'] = (size * nodes.length * b.sizes.pullsPerNode) / MiB / (both.value / 1000);
    out['s3.s3rver.busy'] = ((b.s3rverCpuMs() - s3rverCpu) / both.value) * 100;
    out['s3.rss.pull'] = Math.max(single.maxRss, both.maxRss) / MiB;
  } finally {
    await second?.stop();
    await a.stop();
  }
}
