import type { StorageDriver } from '../storage/driver.js';
import { Journal } from './journal.js';
import { EVENTS_ROOT } from './paths.js';
import type { RegistryEvent } from './types.js';

/** A journaled event, with the node whose journal holds it (sequence numbers are per node). */
export interface NodeEvent extends RegistryEvent {
  node: string;
}

/** Where a reader stands in each node's journal: the last sequence number it was given, by node. */
export type EventsCursor = Map<string, number>;

const NODE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** The most nodes read: a bucket with more journal folders than this is not a cluster but a mistake. */
const MAX_NODES = 256;

/** The nodes that have a journal folder in this storage, sorted; stray names are ignored, not trusted. */
export async function journalNodes(driver: StorageDriver): Promise<string[]> {
  return (await driver.list(EVENTS_ROOT))
    .filter((n) => NODE.test(n))
    .sort()
    .slice(0, MAX_NODES);
}

/**
 * The journal of every node in storage, opened now (the others grow on their own nodes). `local`, this
 * node's live journal, is used as it is: it already knows what it wrote and keeps the newest in memory.
 */
export async function nodeJournals(driver: StorageDriver, local?: Journal): Promise<Journal[]> {
  const names = new Set(await journalNodes(driver));
  if (local) names.delete(local.node);
  const others = [...names].map((node) => new Journal(driver, node, { maxEvents: Number.MAX_SAFE_INTEGER }));
  await Promise.all(others.map((j) => j.open()));
  return local ? [local, ...others] : others;
}

/** Reads a cursor as `node:seq,node:seq`; a bare sequence number is a position in `defaultNode`'s journal. */
export function parseCursor(text: string, defaultNode: string): EventsCursor {
  const cursor: EventsCursor = new Map();
  if (text === '') return cursor;
  if (/^\d{1,15}$/.test(text)) return cursor.set(defaultNode, Number(text));
  if (text.length > 20_000) throw new Error('the cursor is too long');
  for (const part of text.split(',')) {
    const m = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63}):(-1|\d{1,15})$/.exec(part);
    if (!m) throw new Error(`"${part.slice(0, 80)}" is not node:sequence`);
    cursor.set(m[1]!, Number(m[2]));
  }
  return cursor;
}

/** Writes a cursor as `parseCursor` reads it, nodes sorted. */
export function formatCursor(cursor: EventsCursor): string {
  return [...cursor.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([node, seq]) => `${node}:${seq}`)
    .join(',');
}

/** Where a reader starting at `time` (epoch ms) stands in each journal: before its first segment written since. */
export function cursorAt(journals: Journal[], time: number): EventsCursor {
  return new Map(journals.map((j) => [j.node, j.seqAt(time) - 1]));
}

/**
 * Up to `limit` events past `cursor` from every journal, merged oldest first by time (ties by node, then
 * sequence). Each node's events stay in their own order, so a reader that moves its cursor per event it
 * takes misses none and repeats none, even when a node's clock or a late write puts one out of time order.
 */
export async function readMerged(journals: Journal[], cursor: EventsCursor, limit: number): Promise<NodeEvent[]> {
  const heads = await Promise.all(
    journals.map(async (j) => ({ node: j.node, events: await j.read(cursor.get(j.node) ?? -1, limit), at: 0 })),
  );
  const out: NodeEvent[] = [];
  while (out.length < limit) {
    let best: (typeof heads)[number] | undefined;
    for (const h of heads) {
      const e = h.events[h.at];
      if (!e) continue;
      const b = best?.events[best.at];
      if (!b || e.timestamp < b.timestamp || (e.timestamp === b.timestamp && h.node < best!.node)) best = h;
    }
    if (!best) break;
    out.push({ ...best.events[best.at]!, node: best.node });
    best.at++;
  }
  return out;
}
