import { parseDuration } from '../config/duration.js';
import type { StorageDriver } from '../storage/driver.js';
import { Collector, type CollectReport } from './collector.js';
import { inWindow, type GcConfig } from './config.js';
import type { Lifecycle } from './lifecycle.js';
import type { GcMetrics } from './metrics.js';
import { runPass, type GcLog } from './run.js';

/** A running background job that can be stopped. */
export interface GcJob {
  stop(): void;
  /** The pass in progress, if any (tests and shutdown wait for it). */
  running(): Promise<void>;
}

/** Where a scheduled collection runs and reports. */
export interface ScheduleOptions {
  readOnly: boolean;
  log: GcLog;
  metrics?: GcMetrics;
  lifecycle?: Lifecycle;
  /** Called after each pass that ran (not one refused the lease), with its report. */
  onPass?: (report: CollectReport, dryRun: boolean) => void;
}

/**
 * Runs garbage collection every `storage.gc.interval` inside the server, inside the window if one is set.
 * A read-only node never collects: it may not write, and another node owns the bucket's lifecycle.
 */
export function scheduleGc(driver: StorageDriver, cfg: GcConfig | undefined, options: ScheduleOptions): GcJob {
  if (!cfg?.enabled || options.readOnly) return { stop: () => undefined, running: async () => undefined };
  const collector = new Collector(driver);
  let current: Promise<void> = Promise.resolve();
  let busy = false;
  const pass = async (): Promise<void> => {
    if (!inWindow(cfg.window, new Date())) return;
    busy = true;
    try {
      const report = await runPass(driver, collector, {
        graceMs: parseDuration(cfg.grace),
        deleteUntagged: cfg.deleteuntagged,
        dryRun: cfg.dryrun,
        role: cfg.collector,
        log: options.log,
        ...(options.metrics ? { metrics: options.metrics } : {}),
        ...(options.lifecycle ? { lifecycle: options.lifecycle } : {}),
      });
      if ('refused' in report) options.log.info({ reason: report.refused }, 'garbage collection pass skipped');
      else {
        const recorded = report.verdicts.filter((v) => v.action === 'recorded').length;
        options.log.info(
          {
            deleted: report.deletedObjects,
            bytes: report.reclaimedBytes,
            recorded,
            ms: report.durationMs,
            dryrun: cfg.dryrun,
          },
          'garbage collection pass',
        );
        options.onPass?.(report, cfg.dryrun);
      }
    } catch (e) {
      options.log.warn({ err: e }, 'garbage collection pass failed');
    } finally {
      busy = false;
    }
  };
  const tick = (): void => {
    // Only a pass that starts replaces `current`: a tick during a pass must not hide it from `running()`.
    if (!busy) current = pass();
  };
  const timer = setInterval(tick, Math.max(1000, parseDuration(cfg.interval)));
  timer.unref();
  return { stop: () => clearInterval(timer), running: () => current };
}
