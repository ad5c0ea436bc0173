import type { FastifyInstance } from 'fastify';
import { lifecycleOf } from '../gc/lifecycle.js';
import { gcMetrics } from '../gc/metrics.js';
import { scheduleGc, type GcJob } from '../gc/schedule.js';
import type { RegistryContext } from './context.js';

/** Runs `storage.gc` while the server listens; on close, stops the schedule and lets a pass in progress end. */
export function installGc(app: FastifyInstance, ctx: RegistryContext): void {
  const cfg = ctx.config.storage.gc;
  if (!cfg?.enabled) return;
  let job: GcJob | undefined;
  app.addHook('onReady', async () => {
    if (ctx.readOnly) app.log.warn('storage.gc: not run, this registry is read-only (storage.maintenance.readonly.enabled)');
    // Checked at start (config-check.ts): a retention pattern that cannot compile never gets here.
    const lifecycle = lifecycleOf(ctx.config);
    const metrics = gcMetrics(ctx.metrics.registry);
    const options = { readOnly: ctx.readOnly, log: app.log, metrics, ...(lifecycle ? { lifecycle } : {}) };
    job = scheduleGc(ctx.driver, cfg, options);
  });
  app.addHook('onClose', async () => {
    job?.stop();
    await job?.running();
  });
}
