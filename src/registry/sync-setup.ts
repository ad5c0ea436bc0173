import { Counter, Histogram } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { MirrorJob } from '../sync/job.js';
import { buildMirrorJobs as buildJobs } from '../sync/setup.js';
import { SyncScheduler } from '../sync/scheduler.js';
import { RegistryPool } from '../transport/registry-client.js';
import type { Upstreams } from '../upstream/upstreams.js';
import type { TransportOptions } from '../transport/options.js';
import { buildTrust } from './trust-setup.js';
import type { RegistryContext } from './context.js';
import { claimForPush } from './gc-claim.js';
import { emitDetached, type EventDraft } from './events.js';
import { runCounts, type RunSummary } from '../sync/state.js';

/** The most image names one mirror run's event lists per outcome; the counts are always whole. */
const LISTED = 100;

/** A mirror run as an event: what it copied, followed (moved tags), pruned and refused, or why it failed. */
function mirrorRunEvent(job: string, s: RunSummary | Error, ms: number): EventDraft {
  if (s instanceof Error)
    return {
      type: 'mirror.run',
      target: {},
      data: { job, result: 'failed', error: s.message.slice(0, 500), ms: Math.round(ms) },
    };
  const data = {
    job,
    result: s.ok ? 'ok' : 'errors',
    ms: Math.round(ms),
    counts: runCounts(s),
    copied: s.copied.slice(0, LISTED),
    moved: s.moved.slice(0, LISTED),
    pruned: s.pruned.slice(0, LISTED),
    refused: s.refused.slice(0, LISTED),
    errors: s.errors.slice(0, LISTED),
  };
  return { type: 'mirror.run', target: {}, data };
}

type Log = { info(o: object, msg: string): void; warn(o: object, msg: string): void };

/** The mirror jobs a config names, writing into this registry's storage (or their `to`). */
export function buildMirrorJobs(
  ctx: RegistryContext,
  config: Config,
  log: Log,
  upstreams?: Upstreams,
  destination?: TransportOptions,
  pool?: RegistryPool,
): MirrorJob[] {
  const trust = ctx.trust ?? buildTrust(config);
  const u = upstreams ?? ctx.cache?.upstreams;
  return buildJobs(
    {
      driver: ctx.driver,
      blobs: ctx.blobs,
      uploads: ctx.uploads,
      repo: (name) => ctx.repo(name),
      log,
      changed: () => ctx.catalog.invalidate(),
      claim: (digests) => claimForPush(ctx, digests),
      ...(u ? { upstreams: u } : {}),
      ...(ctx.cache ? { flows: ctx.cache.flows } : {}),
      ...(destination ? { destination } : {}),
      ...(trust ? { trust } : {}),
      ...(pool ? { pool } : {}),
    },
    config,
  );
}

/** Starts the scheduled mirror jobs of a running registry, with per-job metrics; returns how to stop them. */
export function startMirrorJobs(ctx: RegistryContext, config: Config, log: Log): SyncScheduler | undefined {
  if (!config.mirrors?.length) return undefined;
  // One set of connections for every job and run: one ping per upstream for the server's life, tokens
  // renewed as they expire, instead of a ping and fresh connections each time a job runs.
  const pool = new RegistryPool();
  const jobs = buildMirrorJobs(ctx, config, log, undefined, undefined, pool);
  const runs = new Counter({
    name: 'sluice_sync_runs_total',
    help: 'Mirror job runs by job and result',
    labelNames: ['job', 'result'] as const,
    registers: [ctx.metrics.registry],
  });
  const seconds = new Histogram({
    name: 'sluice_sync_run_duration_seconds',
    help: 'Mirror job run time by job and result',
    labelNames: ['job', 'result'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
    registers: [ctx.metrics.registry],
  });
  const images = new Counter({
    name: 'sluice_sync_images_total',
    help: 'Mirror job outcomes per image by job and action',
    labelNames: ['job', 'action'] as const,
    registers: [ctx.metrics.registry],
  });
  const scheduler = new SyncScheduler(jobs, log, (job, s, ms) => {
    const result = s instanceof Error ? 'failed' : s.ok ? 'ok' : 'errors';
    seconds.observe({ job: job.name, result }, ms / 1000);
    runs.inc({ job: job.name, result });
    emitDetached(ctx, log, mirrorRunEvent(job.name, s, ms));
    if (s instanceof Error) return;
    images.inc({ job: job.name, action: 'copied' }, s.copied.length);
    images.inc({ job: job.name, action: 'moved' }, s.moved.length);
    images.inc({ job: job.name, action: 'unchanged' }, s.unchanged);
    images.inc({ job: job.name, action: 'pruned' }, s.pruned.length);
    images.inc({ job: job.name, action: 'refused' }, s.refused.length);
    images.inc({ job: job.name, action: 'error' }, s.errors.length);
    log.info(
      {
        job: job.name,
        copied: s.copied.length,
        moved: s.moved.length,
        unchanged: s.unchanged,
        pruned: s.pruned.length,
        refused: s.refused.length,
        errors: s.errors.length,
      },
      `sync ${job.name}: run finished`,
    );
  });
  scheduler.onStop(() => pool.close());
  scheduler.start();
  return scheduler;
}
