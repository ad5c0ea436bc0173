import { parseDuration } from '../config/duration.js';
import type { Registry } from './server.js';

/** A running background job that can be stopped. */
export interface Job {
  stop(): void;
}

/**
 * Purges abandoned upload sessions at start and then every `interval`, with Distribution's
 * `storage.maintenance.uploadpurging` keys and defaults (on; older than 168h; every 24h).
 * A read-only registry never purges: another process may own those sessions.
 */
export function scheduleUploadPurge({ app, ctx }: Registry): Job {
  const cfg = ctx.config.storage.maintenance?.uploadpurging ?? { enabled: true, age: '168h', interval: '24h', dryrun: false };
  if (!cfg.enabled || ctx.readOnly) return { stop: () => undefined };
  const ageMs = parseDuration(cfg.age);
  const run = async (): Promise<void> => {
    try {
      const purged = await ctx.uploads.purge(new Date(Date.now() - ageMs), cfg.dryrun);
      if (purged.length > 0) app.log.info({ count: purged.length, dryrun: cfg.dryrun, sessions: purged.slice(0, 20) }, 'purged old upload sessions');
    } catch (e) {
      app.log.warn({ err: e }, 'upload purge failed');
    }
  };
  void run();
  const timer = setInterval(() => void run(), Math.max(1000, parseDuration(cfg.interval)));
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
