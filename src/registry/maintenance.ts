import { parseDuration } from '../config/duration.js';
import { isBlobFolder } from '../storage/layout.js';
import type { FastifyBaseLogger } from 'fastify';
import type { RegistryContext } from './context.js';

/** A running background job that can be stopped. */
export interface Job {
  stop(): void;
}

/**
 * How old a crash's leftover must be before it is removed. A temporary file lives for the milliseconds
 * of one small write, and an empty blob folder for those between its mkdir and its rename: anything this
 * old belongs to no request in flight, in this process or another one on the same root.
 */
export const LEFTOVER_AGE_MS = 10 * 60 * 1000;

/**
 * Purges abandoned upload sessions at start and then every `interval`, with Distribution's
 * `storage.maintenance.uploadpurging` keys and defaults (on; older than 168h; every 24h), and removes
 * what a crash left behind (temporary files, empty blob folders) at start and with every purge.
 * A read-only registry never purges: another process may own those sessions.
 */
export function scheduleUploadPurge(
  ctx: RegistryContext,
  log: FastifyBaseLogger,
  leftoverAgeMs = LEFTOVER_AGE_MS,
): Job {
  const cfg = ctx.config.storage.maintenance?.uploadpurging ?? {
    enabled: true,
    age: '168h',
    interval: '24h',
    dryrun: false,
  };
  if (ctx.readOnly) return { stop: () => undefined };
  const ageMs = parseDuration(cfg.age);
  const sweep = async (): Promise<void> => {
    if (!ctx.driver.sweep) return;
    try {
      const removed = await ctx.driver.sweep(new Date(Date.now() - leftoverAgeMs), isBlobFolder);
      if (removed.length > 0)
        log.info({ count: removed.length, paths: removed.slice(0, 20) }, 'removed leftovers of an interrupted write');
    } catch (e) {
      log.warn({ err: e }, 'removing leftovers of interrupted writes failed');
    }
  };
  const purge = async (): Promise<void> => {
    try {
      const purged = await ctx.uploads.purge(new Date(Date.now() - ageMs), cfg.dryrun);
      if (purged.length > 0)
        log.info(
          { count: purged.length, dryrun: cfg.dryrun, sessions: purged.slice(0, 20) },
          'purged old upload sessions',
        );
      // Multipart uploads (S3) a process began and never recorded or finished: as old as a purged session.
      const aborted =
        cfg.dryrun || !ctx.driver.abortStaleUploads
          ? []
          : await ctx.driver.abortStaleUploads(new Date(Date.now() - ageMs));
      if (aborted.length > 0)
        log.info({ count: aborted.length, keys: aborted.slice(0, 20) }, 'aborted abandoned multipart uploads');
    } catch (e) {
      log.warn({ err: e }, 'upload purge failed');
    }
  };
  if (!cfg.enabled) {
    void sweep();
    return { stop: () => undefined };
  }
  const run = async (): Promise<void> => {
    await purge();
    if (!cfg.dryrun) await sweep();
  };
  void run();
  const timer = setInterval(() => void run(), Math.max(1000, parseDuration(cfg.interval)));
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
