// The web UI workload (issue 19): JSON API answer times for the repository list with 10,000 repositories and
// the tag list of one repository with 10,000 tags (p50, p99, warm, and the first, cold answer), and the time to
// the first rendered row of both pages in Debian's Chromium. Storage is written through the layout directly
// (no HTTP), so seeding takes seconds; the registry runs in this process on 127.0.0.1.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { validateConfig } from '../src/config/load.js';
import { digestOf } from '../src/oci/digest.js';
import type { RepositoryName } from '../src/oci/name.js';
import { buildRegistry } from '../src/registry/server.js';
import { limiter } from '../src/async/limit.js';
import type { MetricInfo } from './report.js';
import type { Sample } from './workloads.js';

/** The rows this workload fills. */
export const UI_METRICS: MetricInfo[] = [
  {
    id: 'ui.repos.cold',
    label: 'ui: GET /api/v1/repositories, 10,000 repositories, first answer (cold)',
    unit: 'ms',
    better: 'lower',
  },
  {
    id: 'ui.repos.p50',
    label: 'ui: GET /api/v1/repositories, 10,000 repositories, pages and searches, p50',
    unit: 'ms',
    better: 'lower',
  },
  {
    id: 'ui.repos.p99',
    label: 'ui: GET /api/v1/repositories, 10,000 repositories, pages and searches, p99',
    unit: 'ms',
    better: 'lower',
  },
  { id: 'ui.tags.cold', label: 'ui: GET /api/v1/tags, 10,000 tags, first answer (cold)', unit: 'ms', better: 'lower' },
  {
    id: 'ui.tags.p50',
    label: 'ui: GET /api/v1/tags, 10,000 tags, pages, sorts and filters, p50',
    unit: 'ms',
    better: 'lower',
  },
  {
    id: 'ui.tags.p99',
    label: 'ui: GET /api/v1/tags, 10,000 tags, pages, sorts and filters, p99',
    unit: 'ms',
    better: 'lower',
  },
  {
    id: 'ui.repos.first-row',
    label: 'ui: Chromium, repositories page, navigation to first rendered row',
    unit: 'ms',
    better: 'lower',
  },
  {
    id: 'ui.tags.first-row',
    label: 'ui: Chromium, repository page with 10,000 tags, navigation to first rendered row',
    unit: 'ms',
    better: 'lower',
  },
];

const TAGS_REPO = 'bench/tags' as RepositoryName;

function percentile(xs: number[], p: number): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function timed(url: string): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(url);
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`${url}: ${r.status}`);
  return performance.now() - t0;
}

/** Runs the workload once: seeds, serves, measures, and removes its storage. */
export async function uiRound(
  sample: Sample,
  sizes = { repos: 10_000, tags: 10_000 },
  log: (m: string) => void = () => undefined,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-ui-'));
  const { config } = validateConfig({
    log: { level: 'silent' },
    http: { addr: '127.0.0.1:0' },
    storage: { filesystem: { rootdirectory: dir } },
  });
  const reg = buildRegistry({ config, logger: false });
  try {
    log(`ui: writing ${sizes.repos} repositories and ${sizes.tags} tags`);
    const config0 = Buffer.from('{"architecture":"amd64","os":"linux","config":{}}');
    const layers = Array.from({ length: 100 }, (_, i) => Buffer.from(`layer ${i}`));
    const manifests = layers.map((l) =>
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: {
            mediaType: 'application/vnd.oci.image.config.v1+json',
            digest: digestOf(config0),
            size: config0.length,
          },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(l), size: l.length }],
        }),
      ),
    );
    await reg.ctx.blobs.put(config0);
    const limit = limiter(32);
    const seed = async (name: RepositoryName, tag: string, m: Buffer) => {
      const repo = reg.ctx.repo(name);
      const d = await repo.putManifest(m);
      await repo.tag(tag, d);
    };
    await Promise.all(
      Array.from({ length: sizes.repos }, (_, i) =>
        limit(() => seed(`bench/r${String(i).padStart(5, '0')}` as RepositoryName, 'latest', manifests[i % 100]!)),
      ),
    );
    await Promise.all(
      Array.from({ length: sizes.tags }, (_, i) => limit(() => seed(TAGS_REPO, `v${i}`, manifests[i % 100]!))),
    );
    const url = await reg.app.listen({ host: '127.0.0.1', port: 0 });
    log('ui: measuring the API');
    sample['ui.repos.cold'] = await timed(`${url}/api/v1/repositories`);
    sample['ui.tags.cold'] = await timed(`${url}/api/v1/tags?repository=${TAGS_REPO}`);
    const repoUrls = [
      ...Array.from({ length: 20 }, (_, i) => `page=${i + 1}`),
      'q=r0',
      'q=r99',
      'q=nothing',
      'order=desc',
      'page=150&n=50',
    ];
    const tagUrls = [
      'sort=name',
      'sort=size&order=desc',
      'sort=pushed&order=desc',
      'q=v99',
      'page=100',
      'platform=linux/amd64&page=3',
      'q=nothing',
    ];
    // Warm every page once (their rows' tables), then time several passes.
    for (const q of repoUrls) await timed(`${url}/api/v1/repositories?${q}`);
    const repoTimes: number[] = [];
    const tagTimes: number[] = [];
    for (let pass = 0; pass < 8; pass++) {
      for (const q of repoUrls) repoTimes.push(await timed(`${url}/api/v1/repositories?${q}`));
      for (const q of tagUrls) tagTimes.push(await timed(`${url}/api/v1/tags?repository=${TAGS_REPO}&${q}`));
    }
    sample['ui.repos.p50'] = percentile(repoTimes, 50);
    sample['ui.repos.p99'] = percentile(repoTimes, 99);
    sample['ui.tags.p50'] = percentile(tagTimes, 50);
    sample['ui.tags.p99'] = percentile(tagTimes, 99);
    await firstRows(url, sample, log);
  } finally {
    await reg.app.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Navigation to the first rendered row of each page, in Chromium, when it is installed. */
async function firstRows(url: string, sample: Sample, log: (m: string) => void): Promise<void> {
  let chromium: typeof import('playwright-core').chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    log('ui: playwright-core is not installed; no first-row times');
    return;
  }
  const browser = await chromium
    .launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] })
    .catch(() => undefined);
  if (!browser) {
    log('ui: /usr/bin/chromium does not start; no first-row times');
    return;
  }
  try {
    const page = await browser.newPage();
    const firstRow = async (path: string): Promise<number> => {
      await page.goto('about:blank');
      await page.goto(`${url}${path}`);
      await page.locator('table.list tbody tr').first().waitFor();
      // Milliseconds since this navigation started, as the page's own clock says.
      return page.evaluate('performance.now()') as Promise<number>;
    };
    // One warm-up load each (the scripts into the browser's cache, as a returning user has them).
    await firstRow('/#/');
    await firstRow(`/#/repo?name=${TAGS_REPO}`);
    const repos: number[] = [];
    const tags: number[] = [];
    for (let i = 0; i < 5; i++) {
      repos.push(await firstRow('/#/'));
      tags.push(await firstRow(`/#/repo?name=${TAGS_REPO}`));
    }
    sample['ui.repos.first-row'] = percentile(repos, 50);
    sample['ui.tags.first-row'] = percentile(tags, 50);
  } finally {
    await browser.close();
  }
}

// `node dist/bench/ui.js`: this workload alone, printed as JSON.
if (import.meta.url === `file://${process.argv[1]}`) {
  const sample: Sample = {};
  await uiRound(sample, undefined, (m) => process.stderr.write(`${m}\n`));
  process.stdout.write(`${JSON.stringify(sample, null, 1)}\n`);
}
