import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataFile } from './data.js';
import { load } from './load.js';
import { pullBlob, pushBytes, pushChunked, pushMonolithic, putManifest, walkPages } from './http.js';
import { sampleRss, type BenchServer } from './servers.js';

/** One round's measurements for one server, by metric id. */
export type Sample = Record<string, number>;

/** Sizes and durations for one bench run. */
export interface BenchPlan {
  bigBlob: DataFile;
  chunkSize: number;
  parallelBlobs: DataFile[];
  manifestSeconds: number;
  connections: number[];
  tagCount: number;
  repoCount: number;
  imageLayout: string;
  imageBytes: number;
  skopeo: boolean;
}

const MiB = 1024 * 1024;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function mibPerSecond(bytes: number, ms: number): number {
  return bytes / MiB / (ms / 1000);
}

/** Milliseconds `fn` took. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Workloads 1, 2 and 6: blob push and pull, one stream and four in parallel, with the server's RSS. */
export async function blobWorkloads(s: BenchServer, plan: BenchPlan, out: Sample): Promise<void> {
  const big = plan.bigBlob;
  out['blob.push.monolithic'] = mibPerSecond(big.size, await timed(() => pushMonolithic(s.url, 'bench/mono', big)));
  out['blob.push.chunked'] = mibPerSecond(
    big.size,
    await timed(() => pushChunked(s.url, 'bench/chunked', big, plan.chunkSize)),
  );
  const parBytes = plan.parallelBlobs.reduce((a, f) => a + f.size, 0);
  const push = await sampleRss(s, () =>
    timed(() => Promise.all(plan.parallelBlobs.map((f) => pushMonolithic(s.url, 'bench/parallel', f)))),
  );
  out['blob.push.parallel'] = mibPerSecond(parBytes, push.value);
  out['blob.pull.single'] = mibPerSecond(
    big.size,
    await timed(() => pullBlob(s.url, 'bench/mono', big.digest, big.size)),
  );
  const pull = await sampleRss(s, () =>
    timed(() => Promise.all(plan.parallelBlobs.map((f) => pullBlob(s.url, 'bench/parallel', f.digest, f.size)))),
  );
  out['blob.pull.parallel'] = mibPerSecond(parBytes, pull.value);
  out['rss.parallel'] = Math.max(push.maxRss, pull.maxRss) / MiB;
  out['rss.peak'] = s.peakRss() / MiB;
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** Pushes a one-layer image of a few bytes under `repo:tag`; resolves with the manifest's digest and config digest. */
export async function pushSmallImage(
  base: string,
  repo: string,
  tag: string,
): Promise<{ manifest: string; config: string; layer: string }> {
  const layer = Buffer.from('sluice bench layer\n');
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }),
  );
  await pushBytes(base, repo, layer, sha256(layer));
  await pushBytes(base, repo, config, sha256(config));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
    }),
  );
  await putManifest(base, repo, tag, manifest, OCI_MANIFEST);
  return { manifest: sha256(manifest), config: sha256(config), layer: sha256(layer) };
}

/** Workload 3: manifest GET by tag and HEAD by digest at each connection count. */
export async function manifestWorkloads(s: BenchServer, plan: BenchPlan, out: Sample): Promise<void> {
  const { manifest } = await pushSmallImage(s.url, 'bench/manifest', 'latest');
  const targets: [string, 'GET' | 'HEAD', string][] = [
    ['get-tag', 'GET', `${s.url}/v2/bench/manifest/manifests/latest`],
    ['head-digest', 'HEAD', `${s.url}/v2/bench/manifest/manifests/${manifest}`],
  ];
  for (const [name, method, url] of targets) {
    for (const c of plan.connections) {
      const r = await load(url, method, c, plan.manifestSeconds, { accept: OCI_MANIFEST });
      if (r.errors > 0 || r.requests === 0)
        throw new Error(`manifest ${name} at ${c} connections: ${r.errors} errors, ${r.requests} answered`);
      out[`manifest.${name}.c${c}.rps`] = r.rps;
      out[`manifest.${name}.c${c}.p50`] = r.p50;
      out[`manifest.${name}.c${c}.p99`] = r.p99;
    }
  }
}

/** Runs `fn` over `items`, at most `width` at a time. */
export async function inPool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

async function writeLink(path: string, digest: string): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, digest);
}

/**
 * Writes tags and repositories straight into the storage root in Distribution's layout, which both
 * servers read as it is: pushing 10,000 repositories over HTTP would take longer than the walk it sets up.
 */
async function seedListing(
  root: string,
  tagCount: number,
  repoCount: number,
  img: { manifest: string; config: string; layer: string },
): Promise<void> {
  const repos = join(root, 'docker/registry/v2/repositories');
  const hex = (d: string) => d.slice('sha256:'.length);
  const tags = Array.from({ length: tagCount }, (_, i) => `t${String(i).padStart(6, '0')}`);
  await inPool(tags, 64, async (t) => {
    const dir = join(repos, 'bench/tags/_manifests/tags', t);
    await writeLink(join(dir, 'current/link'), img.manifest);
    await writeLink(join(dir, 'index/sha256', hex(img.manifest), 'link'), img.manifest);
  });
  const names = Array.from({ length: repoCount }, (_, i) => `bench/catalog/r${String(i).padStart(6, '0')}`);
  await inPool(names, 64, async (n) => {
    const dir = join(repos, n);
    for (const d of [img.config, img.layer]) await writeLink(join(dir, '_layers/sha256', hex(d), 'link'), d);
    await writeLink(join(dir, '_manifests/revisions/sha256', hex(img.manifest), 'link'), img.manifest);
    await writeLink(join(dir, '_manifests/tags/latest/current/link'), img.manifest);
    await writeLink(join(dir, '_manifests/tags/latest/index/sha256', hex(img.manifest), 'link'), img.manifest);
  });
}

/** Workload 4: a full paginated walk of a 10,000-tag list and a 10,000-repository catalog. */
export async function listingWorkloads(s: BenchServer, plan: BenchPlan, out: Sample, pageSize = 100): Promise<void> {
  const img = await pushSmallImage(s.url, 'bench/tags', 'seed');
  await seedListing(s.root, plan.tagCount - 1, plan.repoCount, img);
  let tags = { entries: 0, pages: 0 };
  out['list.tags.walk'] = await timed(async () => {
    tags = await walkPages(s.url, `/v2/bench/tags/tags/list?n=${pageSize}`, 'tags');
  });
  if (tags.entries !== plan.tagCount) throw new Error(`tag walk found ${tags.entries} tags, expected ${plan.tagCount}`);
  let cat = { entries: 0, pages: 0 };
  out['list.catalog.walk'] = await timed(async () => {
    cat = await walkPages(s.url, `/v2/_catalog?n=${pageSize}`, 'repositories');
  });
  if (cat.entries < plan.repoCount)
    throw new Error(`catalog walk found ${cat.entries} repositories, expected at least ${plan.repoCount}`);
  out['list.tags.pages'] = tags.pages;
  out['list.catalog.pages'] = cat.pages;
}

function runSkopeo(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('skopeo', ['--insecure-policy', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`skopeo ${args.join(' ')} exited ${code}: ${err}`)),
    );
  });
}

/** Workload 5: skopeo pushes the realistic image from an OCI layout and pulls it back into a fresh one. */
export async function skopeoWorkloads(s: BenchServer, plan: BenchPlan, out: Sample): Promise<void> {
  const ref = `docker://${s.host}/bench/image:latest`;
  out['skopeo.push'] =
    (await timed(() => runSkopeo(['copy', '--dest-tls-verify=false', `oci:${plan.imageLayout}:latest`, ref]))) / 1000;
  const dest = await mkdtemp(join(tmpdir(), 'sluice-bench-pull-'));
  try {
    out['skopeo.pull'] =
      (await timed(() => runSkopeo(['copy', '--src-tls-verify=false', ref, `oci:${dest}:latest`]))) / 1000;
  } finally {
    await rm(dest, { recursive: true, force: true });
  }
}
