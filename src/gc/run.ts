import type { StorageDriver } from '../storage/driver.js';
import type { CollectOptions, CollectReport, Collector } from './collector.js';
import { LOCAL_LEASE, takeLease, type CollectorRole, type Refusal } from './lease.js';
import { recordUsage, type GcMetrics } from './metrics.js';
import type { Garbage } from './plan.js';

/** Where a pass writes its lines. */
export interface GcLog {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
}

/** What one leased pass needs besides the collector. */
export interface PassOptions extends Omit<CollectOptions, 'onDelete'> {
  role: CollectorRole;
  log: GcLog;
  metrics?: GcMetrics;
  /** How long the lease lasts without renewal (tests shorten it). */
  leaseMs?: number;
}

/** A dead node's lease ends after this; a live one renews it three times as often, however long its pass. */
const LEASE_MS = 10 * 60_000;

/** The audit line of one deleted object: what, where, why, how many bytes. */
function auditFields(g: Garbage, bytes: number): object {
  return { gc: 'delete', ...g, bytes };
}

/** Runs one pass under the collector lease; a refusal when another node holds it or this node must not collect. */
export async function runPass(
  driver: StorageDriver,
  collector: Collector,
  options: PassOptions,
): Promise<CollectReport | Refusal> {
  const leaseMs = options.leaseMs ?? LEASE_MS;
  const lease = options.dryRun ? LOCAL_LEASE : await takeLease(driver, options.role, leaseMs);
  if ('refused' in lease) return lease;
  let renewing: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    renewing = renewing
      .then(() => lease.renew())
      .catch((e: unknown) => options.log.warn({ err: e }, 'garbage collection could not renew its lease'));
  }, leaseMs / 3);
  try {
    const metrics = options.metrics;
    const report = await collector.collect({
      ...options,
      ...(metrics ? { onUsage: (u) => recordUsage(metrics, u) } : {}),
      onDelete: (g, bytes) => {
        options.log.info(auditFields(g, bytes), 'garbage collection deleted an object');
        options.metrics?.objects.inc({ kind: g.kind });
        if (g.kind === 'tag' && g.cause) options.metrics?.lifecycle.inc({ cause: g.cause });
        options.metrics?.bytes.inc(bytes);
      },
    });
    options.metrics?.seconds.observe(report.durationMs / 1000);
    if (report.blocked) options.log.warn({ reason: report.blocked }, 'garbage collection deleted nothing');
    return report;
  } finally {
    clearInterval(timer);
    await renewing;
    await lease.release();
  }
}
