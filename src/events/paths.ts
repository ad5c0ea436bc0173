/** Where the events of one node live in storage: beside Distribution's layout, under `_sluice/events/<node>`. */
export const EVENTS_ROOT = 'docker/registry/v2/_sluice/events';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Validates a node or endpoint name before it becomes part of a path. */
export function checkEventName(name: string, what: string): string {
  if (!NAME.test(name)) throw new Error(`invalid ${what} name "${name.slice(0, 80)}"`);
  return name;
}

/** The folder of one node's journal segments. */
export function journalDir(node: string): string {
  return `${EVENTS_ROOT}/${checkEventName(node, 'node')}/journal`;
}

/** Digits of a sequence number in a segment's name, so names sort as numbers do. */
const SEQ_DIGITS = 16;

/** A journal segment: `count` events from `first`, written at `ms` (epoch milliseconds). */
export interface SegmentName {
  first: number;
  count: number;
  ms: number;
}

/** The object name of a segment. */
export function segmentName(s: SegmentName): string {
  return `${String(s.first).padStart(SEQ_DIGITS, '0')}-${s.count}-${s.ms}.jsonl`;
}

/** The file name of a segment still being appended to (files only): its count and time are known once it is sealed. */
export function openSegmentName(first: number): string {
  return `${String(first).padStart(SEQ_DIGITS, '0')}-open.jsonl`;
}

/** The first sequence number of a segment still being appended to, from its file name; undefined for anything else. */
export function parseOpenSegmentName(name: string): number | undefined {
  const m = /^(\d{16})-open\.jsonl$/.exec(name);
  const first = m ? Number(m[1]) : Number.NaN;
  return Number.isSafeInteger(first) ? first : undefined;
}

/** Reads a segment's object name; undefined for anything else (a stray object is ignored, not trusted). */
export function parseSegmentName(name: string): SegmentName | undefined {
  const m = /^(\d{16})-(\d{1,9})-(\d{1,15})\.jsonl$/.exec(name);
  if (!m) return undefined;
  const s = { first: Number(m[1]), count: Number(m[2]), ms: Number(m[3]) };
  return s.count > 0 && Number.isSafeInteger(s.first) ? s : undefined;
}

/** Where one endpoint's delivery state (cursor, counts, last error) is kept. */
export function cursorPath(node: string, endpoint: string): string {
  return `${EVENTS_ROOT}/${checkEventName(node, 'node')}/cursors/${checkEventName(endpoint, 'endpoint')}.json`;
}

/** The folder of one endpoint's dead letters. */
export function deadDir(node: string, endpoint: string): string {
  return `${EVENTS_ROOT}/${checkEventName(node, 'node')}/dead/${checkEventName(endpoint, 'endpoint')}`;
}
