import type { StorageDriver } from '../storage/driver.js';
import type { NotificationsConfig } from './config.js';
import type { DeliveryState } from './endpoint.js';
import { Journal } from './journal.js';
import { journalNodes } from './merged.js';
import { cursorPath, deadDir } from './paths.js';

/** One endpoint's delivery from one node's journal, as `sluice events status` shows it. */
export interface EndpointStatus {
  node: string;
  endpoint: string;
  disabled: boolean;
  delivered: number;
  pending: number;
  dead: number;
  dropped: number;
  failingSince?: string;
  lastError?: string;
  updated?: string;
}

/** The status of every configured endpoint, for every node whose journal is in this storage. */
export async function eventsStatus(driver: StorageDriver, config: NotificationsConfig): Promise<EndpointStatus[]> {
  const nodes = await journalNodes(driver);
  const out: EndpointStatus[] = [];
  for (const node of nodes) {
    const journal = new Journal(driver, node, { maxEvents: Number.MAX_SAFE_INTEGER });
    await journal.open();
    for (const e of config.endpoints) {
      const raw = await driver.getContent(cursorPath(node, e.name));
      const s = raw ? (JSON.parse(raw.toString('utf8')) as DeliveryState) : undefined;
      const dead = (await driver.list(deadDir(node, e.name))).length;
      out.push({
        node,
        endpoint: e.name,
        disabled: e.disabled,
        delivered: s?.delivered ?? 0,
        pending: s ? Math.max(0, journal.lastSeq() - s.cursor) : 0,
        dead,
        dropped: s?.dropped ?? 0,
        ...(s?.failingSince ? { failingSince: s.failingSince } : {}),
        ...(s?.lastError ? { lastError: s.lastError } : {}),
        ...(s?.updated ? { updated: s.updated } : {}),
      });
    }
  }
  return out;
}

/** Reads a `--since` / `?since=` value: an ISO time, or a duration back from now (`1h`); epoch ms. */
export function parseSince(text: string, now = Date.now()): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (m) {
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
    return now - Number(m[1]) * unit;
  }
  const t = Date.parse(text);
  if (Number.isNaN(t))
    throw new Error(`"${text.slice(0, 60)}" is neither a time (2026-12-07T18:00:00Z) nor a duration (1h)`);
  return t;
}
