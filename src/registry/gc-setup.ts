import type { FastifyInstance } from 'fastify';
import { lifecycleOf } from '../gc/lifecycle.js';
import { gcMetrics } from '../gc/metrics.js';
import { scheduleGc, type GcJob } from '../gc/schedule.js';
import type { CollectReport } from '../gc/collector.js';
import type { RegistryContext } from './context.js';
import { emitDetached, type EventDraft } from './events.js';

/** The most deleted objects one collection's event lists; the counts are always whole. */
const LISTED = 100;

/** A collection pass as an event: what went (and why: retention and eviction name their rule), bytes freed. */
export function gcPassEvent(report: CollectReport, dryRun: boolean): EventDraft {
  const gone = report.verdicts.filter((v) => v.action === 'deleted');
  const byKind: Record<string, number> = {};
  for (const v of gone) byKind[v.garbage.kind] = (byKind[v.garbage.kind] ?? 0) + 1;
  const deleted = gone.slice(0, LISTED).map(({ garbage: g, bytes }) => ({ ...g, bytes }));
  const recorded = report.verdicts.filter((v) => v.action === 'recorded').length;
  const data = {
    // A dry run deletes nothing: its "deleted" are what a real pass would have deleted.
    dryrun: dryRun,
    deletedObjects: dryRun ? 0 : report.deletedObjects,
    reclaimedBytes: dryRun ? 0 : report.reclaimedBytes,
    counts: byKind,
    recorded,
    ms: Math.round(report.durationMs),
    deleted,
    ...(report.blocked ? { blocked: report.blocked } : {}),
  };
  return { type: 'gc.pass', target: {}, data };
}

/** Runs `storage.gc` while the server listens; on close, stops the schedule and lets a pass in progress end. */
export function installGc(app: FastifyInstance, ctx: RegistryContext): void {
  const cfg = ctx.config.storage.gc;
  if (!cfg?.enabled) return;
  let job: GcJob | undefined;
  app.addHook('onReady', async () => {
    if (ctx.readOnly)
      app.log.warn('storage.gc: not run, this registry is read-only (storage.maintenance.readonly.enabled)');
    // Checked at start (config-check.ts): a retention pattern that cannot compile never gets here.
    const lifecycle = lifecycleOf(ctx.config);
    const metrics = gcMetrics(ctx.metrics.registry);
    const onPass = (report: CollectReport, dryRun: boolean): void =>
      emitDetached(ctx, app.log, gcPassEvent(report, dryRun));
    const options = { readOnly: ctx.readOnly, log: app.log, metrics, onPass, ...(lifecycle ? { lifecycle } : {}) };
    job = scheduleGc(ctx.driver, cfg, options);
  });
  app.addHook('onClose', async () => {
    job?.stop();
    await job?.running();
  });
}
