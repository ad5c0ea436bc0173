import type { StorageDriver } from '../storage/driver.js';
import { journalDir, parseSegmentName, segmentName, type SegmentName } from './paths.js';
import type { EventType, NewEvent, RegistryEvent } from './types.js';

/** The most events one segment holds: a burst of requests becomes several writes, each bounded. */
const MAX_BATCH = 1000;
/** Segments whose events are kept in memory after writing, so delivery to a keeping-up endpoint reads nothing. */
const RECENT_SEGMENTS = 64;
/**
 * Events that record a change to what storage holds. A batch with one of them is written durably (synced
 * to disk, as the change itself was); a batch of observations only (pulls, refusals, failed logins) is
 * written without a sync: it survives the process dying (`kill -9`) but not the machine losing power,
 * and a pull then costs a file write instead of two disk flushes. On S3 every write is durable anyway.
 */
const CHANGES: ReadonlySet<EventType> = new Set<EventType>([
  'push',
  'delete',
  'mount',
  'tag.moved',
  'cache.fill',
  'mirror.run',
  'gc.pass',
]);

interface Waiting {
  events: NewEvent[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** What a journal is told to keep. */
export interface JournalOptions {
  maxEvents: number;
  /** Called with the sequence range of segments removed to stay under `maxEvents`. */
  onDrop?: (first: number, last: number) => void;
}

/**
 * One node's journal of events in storage. Appends are group-committed: the events of every request that
 * arrives while a write is under way go into the next segment, one object per batch, and each caller is
 * answered only once its batch is durable. Segments are immutable; names carry first sequence, count and time.
 */
export class Journal {
  private segments: SegmentName[] = [];
  private next = 0;
  private queue: Waiting[] = [];
  private writing = false;
  private readonly recent = new Map<number, RegistryEvent[]>();
  private readonly listeners = new Set<() => void>();
  private readonly dir: string;

  constructor(
    readonly driver: StorageDriver,
    readonly node: string,
    private readonly opts: JournalOptions,
  ) {
    this.dir = journalDir(node);
  }

  /** Finds the segments already written, so numbering continues after a restart. */
  async open(): Promise<void> {
    const found = (await this.driver.list(this.dir)).map(parseSegmentName).filter((s): s is SegmentName => !!s);
    found.sort((a, b) => a.first - b.first);
    this.segments = found;
    const last = found[found.length - 1];
    this.next = last ? last.first + last.count : 0;
  }

  /** The sequence number of the newest event, or -1 when there is none. */
  lastSeq(): number {
    return this.next - 1;
  }

  /** The sequence number of the oldest event kept, or `next` when none is. */
  firstSeq(): number {
    return this.segments[0]?.first ?? this.next;
  }

  /** Events kept in the journal. */
  size(): number {
    return this.segments.reduce((n, s) => n + s.count, 0);
  }

  /** Calls `listener` after every durable append; returns a function that stops it. */
  onAppend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Appends events; resolves once they are durable in storage, rejects when the write failed. */
  append(events: NewEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const batch: Waiting[] = [];
        let n = 0;
        while (this.queue.length > 0 && (batch.length === 0 || n + this.queue[0]!.events.length <= MAX_BATCH)) {
          const w = this.queue.shift()!;
          batch.push(w);
          n += w.events.length;
        }
        await this.writeBatch(batch);
      }
    } finally {
      this.writing = false;
    }
  }

  private async writeBatch(batch: Waiting[]): Promise<void> {
    const first = this.next;
    const events: RegistryEvent[] = [];
    for (const w of batch) for (const e of w.events) events.push({ ...e, seq: first + events.length });
    const seg: SegmentName = { first, count: events.length, ms: Date.now() };
    try {
      const body = events.map((e) => JSON.stringify(e)).join('\n') + '\n';
      const durable = events.some((e) => CHANGES.has(e.type));
      await this.driver.putContent(`${this.dir}/${segmentName(seg)}`, Buffer.from(body), { durable });
    } catch (e) {
      for (const w of batch) w.reject(e);
      return;
    }
    this.next = first + events.length;
    this.segments.push(seg);
    this.remember(seg.first, events);
    for (const w of batch) w.resolve();
    for (const l of this.listeners) l();
    await this.enforceBound();
  }

  private remember(first: number, events: RegistryEvent[]): void {
    this.recent.set(first, events);
    if (this.recent.size > RECENT_SEGMENTS) this.recent.delete(this.recent.keys().next().value!);
  }

  /** Removes the oldest segments past `maxEvents`, telling `onDrop` which events went. */
  private async enforceBound(): Promise<void> {
    let total = this.size();
    while (total > this.opts.maxEvents && this.segments.length > 1) {
      const seg = this.segments.shift()!;
      total -= seg.count;
      this.recent.delete(seg.first);
      await this.driver.delete(`${this.dir}/${segmentName(seg)}`).catch(() => undefined);
      this.opts.onDrop?.(seg.first, seg.first + seg.count - 1);
    }
  }

  /** Removes segments written before `before` whose events all lie at or below `upTo` (delivered everywhere). */
  async prune(before: number, upTo: number): Promise<number> {
    let removed = 0;
    while (this.segments.length > 1) {
      const seg = this.segments[0]!;
      if (seg.ms >= before || seg.first + seg.count - 1 > upTo) break;
      this.segments.shift();
      this.recent.delete(seg.first);
      await this.driver.delete(`${this.dir}/${segmentName(seg)}`).catch(() => undefined);
      removed += seg.count;
    }
    return removed;
  }

  /** Up to `limit` events with a sequence number above `after`, oldest first. */
  async read(after: number, limit: number): Promise<RegistryEvent[]> {
    const out: RegistryEvent[] = [];
    for (const seg of [...this.segments]) {
      if (seg.first + seg.count - 1 <= after) continue;
      const events = await this.segment(seg);
      for (const e of events) {
        if (e.seq > after) out.push(e);
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  /** The first sequence number whose segment was written at or after `time` (epoch ms): where a replay starts. */
  seqAt(time: number): number {
    const seg = this.segments.find((s) => s.ms >= time);
    return seg ? seg.first : this.next;
  }

  private async segment(seg: SegmentName): Promise<RegistryEvent[]> {
    const cached = this.recent.get(seg.first);
    if (cached) return cached;
    const bytes = await this.driver.getContent(`${this.dir}/${segmentName(seg)}`);
    // Removed meanwhile (dropped past the bound, or pruned by another reader): nothing to read.
    if (!bytes) return [];
    const events: RegistryEvent[] = [];
    for (const line of bytes.toString('utf8').split('\n')) {
      if (!line) continue;
      try {
        events.push(JSON.parse(line) as RegistryEvent);
      } catch {
        // A torn line cannot happen with atomic writes; a hand-edited one is skipped rather than stopping delivery.
      }
    }
    return events;
  }
}
