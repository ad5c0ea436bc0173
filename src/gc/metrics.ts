import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { RepositoryUsage } from './usage.js';

/** The collector's metrics: what it reclaimed and how long passes take. */
export interface GcMetrics {
  bytes: Counter;
  objects: Counter<'kind'>;
  /** Tags deleted by retention rules or cache eviction, by cause. */
  lifecycle: Counter<'cause'>;
  seconds: Histogram;
  /** Bytes per repository as of the last pass, by kind (exclusive, shared). */
  usage: Gauge<'repository' | 'kind'>;
}

/** Sets the usage gauge to what one pass found; repositories gone since the last pass disappear. */
export function recordUsage(metrics: GcMetrics, usage: RepositoryUsage[]): void {
  metrics.usage.reset();
  for (const u of usage) {
    metrics.usage.set({ repository: u.repository, kind: 'exclusive' }, u.exclusive);
    metrics.usage.set({ repository: u.repository, kind: 'shared' }, u.shared);
  }
}

/** Registers the collector's metrics in a registry's Prometheus registry. */
export function gcMetrics(registry: Registry): GcMetrics {
  return {
    bytes: new Counter({
      name: 'sluice_gc_reclaimed_bytes_total',
      help: 'Bytes of blobs deleted by garbage collection',
      registers: [registry],
    }),
    objects: new Counter({
      name: 'sluice_gc_deleted_objects_total',
      help: 'Objects deleted by garbage collection, by kind (blob, manifest, tag, layer-link)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    lifecycle: new Counter({
      name: 'sluice_gc_lifecycle_deleted_tags_total',
      help: 'Tags deleted by retention rules or cache eviction, by cause (retention, eviction)',
      labelNames: ['cause'] as const,
      registers: [registry],
    }),
    seconds: new Histogram({
      name: 'sluice_gc_pass_duration_seconds',
      help: 'Duration of a garbage-collection pass',
      buckets: [0.1, 0.5, 1, 5, 30, 120, 600, 3600],
      registers: [registry],
    }),
    usage: new Gauge({
      name: 'sluice_repository_bytes',
      help: 'Bytes each repository uses as of the last garbage-collection pass: exclusive (freed if it were deleted) or shared',
      labelNames: ['repository', 'kind'] as const,
      registers: [registry],
    }),
  };
}
