import { randomUUID } from 'node:crypto';
import type { StorageDriver } from '../storage/driver.js';
import { leasePath } from './paths.js';

/** How a node decides whether it may collect: `auto` takes the lease where storage has conditional writes. */
export type CollectorRole = 'auto' | boolean;

/** A held lease; `release` ends it early. */
export interface Lease {
  release(): Promise<void>;
}

interface LeaseRecord {
  owner: string;
  until: string;
}

/**
 * Takes the collector lease: one object written only when absent (a conditional PUT on S3), so that one node
 * at a time collects on a shared bucket. A lease past its end (a node that died) is removed and taken again.
 * Without conditional writes a lease cannot be exclusive: then only a node whose role is `true` collects,
 * and `auto` collects only on a filesystem (one host). Null when this node must not collect now.
 */
export async function takeLease(driver: StorageDriver, role: CollectorRole, durationMs: number): Promise<Lease | null> {
  if (role === false) return null;
  const exclusive = driver.exclusiveCreate ? await driver.exclusiveCreate() : false;
  if (!exclusive) return role === true || driver.name === 'filesystem' ? { release: async () => undefined } : null;
  const owner = randomUUID();
  const record: LeaseRecord = { owner, until: new Date(Date.now() + durationMs).toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await driver.putContent(leasePath, Buffer.from(JSON.stringify(record)), { ifAbsent: true });
      return {
        release: async () => {
          if ((await readLease(driver))?.owner === owner) await driver.delete(leasePath);
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const held = await readLease(driver);
      if (held && Date.parse(held.until) > Date.now()) return null;
      await driver.delete(leasePath);
    }
  }
  return null;
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
