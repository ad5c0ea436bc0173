import { cpus, totalmem, release } from 'node:os';

/** How a metric reads: its label, unit, and which direction is better. */
export interface MetricInfo {
  id: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
}

/** One row of the results: medians per server and their ratio. */
export interface ResultRow extends MetricInfo {
  sluice: number | null;
  distribution: number | null;
  /** Sluice / Distribution, whichever direction is better. */
  ratio: number | null;
  samples: { sluice: number[]; distribution: number[] };
}

/** The JSON written to bench/results. */
export interface BenchResults {
  date: string;
  quick: boolean;
  rounds: number;
  machine: { cores: number; cpu: string; memoryBytes: number; node: string; platform: string; kernel: string };
  servers: { sluice: boolean; distribution: boolean };
  sizes: Record<string, number | number[]>;
  results: ResultRow[];
}

/** Every metric the bench reports, in table order. */
export function metricCatalog(connections: number[]): MetricInfo[] {
  const m: MetricInfo[] = [
    { id: 'blob.push.monolithic', label: 'blob push, 1 blob, monolithic PUT', unit: 'MiB/s', better: 'higher' },
    { id: 'blob.push.chunked', label: 'blob push, 1 blob, chunked PATCH', unit: 'MiB/s', better: 'higher' },
    { id: 'blob.push.parallel', label: 'blob push, 4 blobs in parallel', unit: 'MiB/s', better: 'higher' },
    { id: 'blob.pull.single', label: 'blob pull, 1 stream', unit: 'MiB/s', better: 'higher' },
    { id: 'blob.pull.parallel', label: 'blob pull, 4 in parallel', unit: 'MiB/s', better: 'higher' },
  ];
  for (const [name, label] of [
    ['get-tag', 'manifest GET by tag'],
    ['head-digest', 'manifest HEAD by digest'],
  ] as const) {
    for (const c of connections) {
      m.push({
        id: `manifest.${name}.c${c}.rps`,
        label: `${label}, ${c} conn, req/s`,
        unit: 'req/s',
        better: 'higher',
      });
      m.push({ id: `manifest.${name}.c${c}.p50`, label: `${label}, ${c} conn, p50`, unit: 'ms', better: 'lower' });
      m.push({ id: `manifest.${name}.c${c}.p99`, label: `${label}, ${c} conn, p99`, unit: 'ms', better: 'lower' });
    }
  }
  m.push(
    { id: 'list.tags.walk', label: 'tag list, full paginated walk', unit: 'ms', better: 'lower' },
    { id: 'list.catalog.walk', label: 'catalog, full paginated walk', unit: 'ms', better: 'lower' },
    { id: 'skopeo.push', label: 'skopeo push, 20-layer image', unit: 's', better: 'lower' },
    { id: 'skopeo.pull', label: 'skopeo pull, 20-layer image', unit: 's', better: 'lower' },
    { id: 'rss.peak', label: 'server peak RSS during blob push/pull', unit: 'MiB', better: 'lower' },
    { id: 'rss.parallel', label: 'server RSS while serving 4 blobs in parallel', unit: 'MiB', better: 'lower' },
    // The cache workload: the Distribution column is Distribution 2.8.2 in proxy mode on the same upstream.
    { id: 'cache.direct.pull', label: 'cache: image pull straight from upstream', unit: 'ms', better: 'lower' },
    { id: 'cache.cold.pull', label: 'cache: cold pull through the cache', unit: 'ms', better: 'lower' },
    { id: 'cache.cold.ratio', label: 'cache: cold pull / direct pull', unit: '×', better: 'lower' },
    { id: 'cache.cold.upstream', label: 'cache: upstream bytes per cold pull / image', unit: '×', better: 'lower' },
    { id: 'cache.cold.cpu', label: 'cache: server CPU per MiB pulled cold', unit: 'ms/MiB', better: 'lower' },
    { id: 'cache.warm.pull', label: 'cache: warm pull (all cached)', unit: 'ms', better: 'lower' },
    { id: 'cache.local.pull', label: 'cache: pull of a local image, same size', unit: 'ms', better: 'lower' },
    { id: 'cache.warm.ratio', label: 'cache: warm pull / local pull', unit: '×', better: 'lower' },
    { id: 'cache.warm.upstream', label: 'cache: upstream bytes per warm pull / image', unit: '×', better: 'lower' },
    { id: 'cache.fanout.time', label: 'cache: 8 cold clients, one blob, all done', unit: 'ms', better: 'lower' },
    { id: 'cache.fanout.upstream', label: 'cache: upstream bytes, 8 cold clients / blob', unit: '×', better: 'lower' },
    {
      id: 'cache.fanout.cpu',
      label: 'cache: server CPU per MiB sent, 8 cold clients',
      unit: 'ms/MiB',
      better: 'lower',
    },
    { id: 'cache.link.direct', label: 'cache over a link: pull straight from upstream', unit: 'ms', better: 'lower' },
    { id: 'cache.link.cold', label: 'cache over a link: cold pull through the cache', unit: 'ms', better: 'lower' },
    { id: 'cache.link.ratio', label: 'cache over a link: cold pull / direct pull', unit: '×', better: 'lower' },
    { id: 'cache.link.fanout', label: 'cache over a link: 8 cold clients, one blob', unit: 'ms', better: 'lower' },
    {
      id: 'cache.link.fanout.ratio',
      label: 'cache over a link: 8 cold clients / 1 direct',
      unit: '×',
      better: 'lower',
    },
    // The sync workload: the Distribution column is `skopeo sync` on the same upstream and YAML.
    { id: 'sync.first.time', label: 'sync: first sync, all images', unit: 's', better: 'lower' },
    { id: 'sync.first.wire', label: 'sync: first sync, first to last upstream request', unit: 's', better: 'lower' },
    { id: 'sync.first.cpu', label: 'sync: first sync, CPU of the sync command', unit: 's', better: 'lower' },
    {
      id: 'sync.first.servers.cpu',
      label: 'sync: first sync, CPU of upstream + destination',
      unit: 's',
      better: 'lower',
    },
    { id: 'sync.first.requests', label: 'sync: first sync, requests to upstream', unit: 'req', better: 'lower' },
    {
      id: 'sync.first.upstream',
      label: 'sync: first sync, upstream bytes / distinct bytes',
      unit: '×',
      better: 'lower',
    },
    { id: 'sync.resync.time', label: 'sync: re-sync, nothing changed', unit: 's', better: 'lower' },
    { id: 'sync.resync.wire', label: 'sync: re-sync, first to last upstream request', unit: 's', better: 'lower' },
    { id: 'sync.resync.cpu', label: 'sync: re-sync, CPU of the sync command', unit: 's', better: 'lower' },
    { id: 'sync.resync.requests', label: 'sync: re-sync, requests to upstream', unit: 'req', better: 'lower' },
    { id: 'sync.resync.head', label: 'sync: re-sync, HEAD manifest', unit: 'req', better: 'lower' },
    { id: 'sync.resync.get.manifests', label: 'sync: re-sync, GET manifest', unit: 'req', better: 'lower' },
    { id: 'sync.resync.get.blobs', label: 'sync: re-sync, GET blob', unit: 'req', better: 'lower' },
    { id: 'sync.resync.get.tags', label: 'sync: re-sync, GET tag list', unit: 'req', better: 'lower' },
    { id: 'sync.resync.other', label: 'sync: re-sync, GET /v2/ and other', unit: 'req', better: 'lower' },
    { id: 'sync.resync.bytes', label: 'sync: re-sync, upstream bytes', unit: 'KiB', better: 'lower' },
    // Sluice's jobs run by `sluice serve` on a schedule, against skopeo's re-sync (run from cron) above.
    {
      id: 'sync.scheduled.time',
      label: 'sync: scheduled re-sync in serve (skopeo: re-sync)',
      unit: 's',
      better: 'lower',
    },
    {
      id: 'sync.scheduled.wire',
      label: 'sync: scheduled re-sync, first to last upstream request',
      unit: 's',
      better: 'lower',
    },
    { id: 'sync.scheduled.cpu', label: 'sync: scheduled re-sync, CPU (serve; skopeo)', unit: 's', better: 'lower' },
    {
      id: 'sync.scheduled.requests',
      label: 'sync: scheduled re-sync, requests to upstream',
      unit: 'req',
      better: 'lower',
    },
  );
  return m;
}

/** The median of some numbers; null for none. */
export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Medians and ratios for every metric from the per-round samples. */
export function summarize(
  metrics: MetricInfo[],
  samples: { sluice: Record<string, number>[]; distribution: Record<string, number>[] },
): ResultRow[] {
  return metrics.map((info) => {
    const s = samples.sluice.map((r) => r[info.id]).filter((x): x is number => typeof x === 'number');
    const d = samples.distribution.map((r) => r[info.id]).filter((x): x is number => typeof x === 'number');
    const ms = median(s);
    const md = median(d);
    return {
      ...info,
      sluice: ms,
      distribution: md,
      ratio: ms !== null && md !== null && md !== 0 ? ms / md : null,
      samples: { sluice: s, distribution: d },
    };
  });
}

/** The machine the numbers came from. */
export function machine(): BenchResults['machine'] {
  const c = cpus();
  return {
    cores: c.length,
    cpu: c[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    node: process.version,
    platform: process.platform,
    kernel: release(),
  };
}

function fmt(x: number | null, unit: string): string {
  if (x === null) return '—';
  if (unit === 'ms' && x < 10) return x.toFixed(2);
  if (unit === 's' || unit === '×' || unit === 'ms/MiB') return x.toFixed(2);
  if (unit === 'req') return Number.isInteger(x) ? x.toString() : x.toFixed(1);
  return x >= 100 ? Math.round(x).toString() : x.toFixed(1);
}

/** The results as a plain-text table. */
export function table(rows: ResultRow[]): string {
  const head = ['workload', 'unit', 'Sluice', 'Distribution', 'Sluice/Dist', ''];
  const body = rows.map((r) => [
    r.label,
    r.unit,
    fmt(r.sluice, r.unit),
    fmt(r.distribution, r.unit),
    r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`,
    `${r.better} is better`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i >= 2 && i <= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
