import type { FastifyInstance } from 'fastify';
import { parseDuration } from '../config/duration.js';
import { PullRecorder } from '../gc/pull-recorder.js';
import { nodeNameFrom } from '../gc/pulls-config.js';
import type { RegistryContext } from './context.js';

/**
 * Records pull times (`storage.gc.pulls`, on unless disabled): flushed every `flush` while the server listens
 * and once more on close. A read-only registry records too (it serves pulls; the file is bookkeeping, not
 * content) unless `write: false` or the storage refuses the write, and then keeps the times in memory.
 */
export function installPulls(app: FastifyInstance, ctx: RegistryContext): void {
  const cfg = ctx.config.storage.gc?.pulls;
  if (cfg?.enabled === false) return;
  const recorder = new PullRecorder(ctx.driver, {
    node: cfg?.node ?? nodeNameFrom(),
    flushMs: Math.max(100, parseDuration(cfg?.flush ?? '30s')),
    write: cfg?.write ?? true,
    log: app.log,
  });
  ctx.pulls = recorder;
  app.addHook('onReady', async () => recorder.start());
  app.addHook('onClose', async () => recorder.close());
}
