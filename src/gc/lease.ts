import { randomUUID } from 'node:crypto';
import type { StorageDriver } from '../storage/driver.js';
import { leasePath } from './paths.js';

/** How a node decides whether it may collect: `auto` takes the lease where storage has conditional writes. */
export type CollectorRole = 'auto' | boolean;

/** A held lease; `renew` extends it by its duration from now, `release` ends it early. */
export interface Lease {
  renew(): Promise<void>;
  release(): Promise<void>;
}

/** A lease that keeps nothing apart (one host, or the one node configured as the collector). */
export const LOCAL_LEASE: Lease = { renew: async () => undefined, release: async () => undefined };

/** Why this node may not collect now. */
export interface Refusal {
  refused: string;
}

interface LeaseRecord {
  owner: string;
  until: string;
}

/**
 * Takes the collector lease: one object written only when absent (a conditional PUT on S3), so that one node
 * at a time collects on a shared bucket. A lease past its end (a node that died) is removed and taken again.
 * Without conditional writes a lease cannot be exclusive: then only a node whose role is `true` collects,
 * and `auto` collects only on a filesystem (one host).
 */
export async function takeLease(
  driver: StorageDriver,
  role: CollectorRole,
  durationMs: number,
): Promise<Lease | Refusal> {
  if (role === false) return { refused: 'this node is not the collector (storage.gc.collector: false)' };
  const exclusive = driver.exclusiveCreate ? await driver.exclusiveCreate() : false;
  if (!exclusive) {
    if (role === true || driver.name === 'filesystem') return LOCAL_LEASE;
    return {
      refused:
        'the storage has no conditional writes, so no lease can keep collectors apart: set storage.gc.collector: true on the one node that collects',
    };
  }
  const owner = randomUUID();
  const record = (): LeaseRecord => ({ owner, until: new Date(Date.now() + durationMs).toISOString() });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await driver.putContent(leasePath, Buffer.from(JSON.stringify(record())), { ifAbsent: true });
      return {
        // Only while it is still ours: a lease that lapsed and was taken by another collector is not taken back.
        renew: async () => {
          if ((await readLease(driver))?.owner === owner)
            await driver.putContent(leasePath, Buffer.from(JSON.stringify(record())));
        },
        release: async () => {
          if ((await readLease(driver))?.owner === owner) await driver.delete(leasePath);
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const held = await readLease(driver);
      if (held && Date.parse(held.until) > Date.now())
        return { refused: `another collector holds the lease until ${held.until}` };
      await driver.delete(leasePath);
    }
  }
  return { refused: 'another collector took the lease first' };
}

async function readLease(driver: StorageDriver): Promise<LeaseRecord | null> {
  const b = await driver.getContent(leasePath);
  if (!b || b.length > 4096) return null;
  try {
    const v = JSON.parse(b.toString('utf8')) as Partial<LeaseRecord>;
    return typeof v.owner === 'string' && typeof v.until === 'string' ? { owner: v.owner, until: v.until } : null;
  } catch {
    return null;
  }
}
