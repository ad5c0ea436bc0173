import type { AppendFile } from '../storage/append-file.js';
import type { StorageDriver } from '../storage/driver.js';
import {
  journalDir,
  openSegmentName,
  parseOpenSegmentName,
  parseSegmentName,
  segmentName,
  type SegmentName,
} from './paths.js';
import type { EventType, NewEvent, RegistryEvent } from './types.js';

/** The most events one segment holds: a burst of requests becomes several writes, each bounded. */
const MAX_BATCH = 1000;
/** Segments whose events are kept in memory after writing, so delivery to a keeping-up endpoint reads nothing. */
const RECENT_SEGMENTS = 64;
/** The most events and bytes one appended-to segment takes before the next batch starts another. */
const SEGMENT_EVENTS = 256;
const SEGMENT_BYTES = 1 << 20;
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

/** A segment as this process knows it: its file name, and whether it is still being appended to. */
interface Segment extends SegmentName {
  name: string;
  open: boolean;
}

/** What a journal is told to keep. */
export interface JournalOptions {
  maxEvents: number;
  /**
   * True for the one process that appends to this node's journal: on a filesystem it appends batches to an
   * open segment and, when it opens, seals what a previous process left open. Readers (the CLI, other nodes)
   * leave open segments as they are and read what they hold.
   */
  writer?: boolean;
  /** Called with the sequence range of segments removed to stay under `maxEvents`. */
  onDrop?: (first: number, last: number) => void;
}

/**
 * One node's journal of events in storage. Appends are group-committed: the events of every request that
 * arrives while a write is under way go into the next batch, and each caller is answered only once its batch
 * is durable. On a bucket each batch is one immutable object whose name carries first sequence, count and
 * time. On a filesystem the writer appends batches to an open segment (`<first>-open.jsonl`, one write each)
 * and renames it to that name when it is full, at close, or, after a crash, when the next writer opens.
 */
export class Journal {
  private segments: Segment[] = [];
  private active: { seg: Segment; file: AppendFile; bytes: number } | undefined;
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
    const found: Segment[] = [];
    for (const name of await this.driver.list(this.dir)) {
      const sealed = parseSegmentName(name);
      if (sealed) found.push({ ...sealed, name, open: false });
      const first = parseOpenSegmentName(name);
      if (first === undefined) continue;
      const seg = await this.openedSegment(name, first);
      if (seg) found.push(seg);
    }
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
    const body = Buffer.from(events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    const durable = events.some((e) => CHANGES.has(e.type));
    try {
      if (this.opts.writer && this.driver.createAppendFile) await this.appendToActive(events, body, durable);
      else {
        const seg: SegmentName = { first, count: events.length, ms: Date.now() };
        const name = segmentName(seg);
        await this.driver.putContent(`${this.dir}/${name}`, body, { durable });
        this.segments.push({ ...seg, name, open: false });
        this.remember(seg.first, events);
      }
    } catch (e) {
      for (const w of batch) w.reject(e);
      return;
    }
    this.next = first + events.length;
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
      await this.driver.delete(`${this.dir}/${seg.name}`).catch(() => undefined);
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
      await this.driver.delete(`${this.dir}/${seg.name}`).catch(() => undefined);
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

  private async segment(seg: Segment): Promise<RegistryEvent[]> {
    const cached = this.recent.get(seg.first);
    if (cached) return cached;
    let bytes = await this.driver.getContent(`${this.dir}/${seg.name}`);
    if (!bytes && seg.open) {
      // Sealed by its writer since this reader listed it: the same events under their final name.
      const sealed = (await this.driver.list(this.dir)).find((n) => parseSegmentName(n)?.first === seg.first);
      if (sealed) bytes = await this.driver.getContent(`${this.dir}/${sealed}`);
    }
    // Removed meanwhile (dropped past the bound, or pruned by another reader): nothing to read.
    return bytes ? parseLines(bytes).slice(0, seg.count) : [];
  }

  /** Appends to the open segment, starting one when there is none or it is full. */
  private async appendToActive(events: RegistryEvent[], body: Buffer, durable: boolean): Promise<void> {
    let a = this.active;
    if (a && (a.seg.count + events.length > this.segmentEvents() || a.bytes + body.length > SEGMENT_BYTES)) {
      await this.seal();
      a = undefined;
    }
    if (!a) {
      const first = events[0]!.seq;
      const name = openSegmentName(first);
      const file = await this.createSegmentFile(`${this.dir}/${name}`);
      a = this.active = { seg: { first, count: 0, ms: Date.now(), name, open: true }, file, bytes: 0 };
      this.segments.push(a.seg);
      this.remember(first, []);
    }
    try {
      await a.file.append(body, durable);
    } catch (e) {
      // Whatever part of the batch was written is cut off, and the next batch starts a new segment.
      await a.file.truncate(a.bytes).catch(() => undefined);
      await this.seal().catch(() => undefined);
      throw e;
    }
    a.bytes += body.length;
    a.seg.count += events.length;
    a.seg.ms = Date.now();
    const kept = this.recent.get(a.seg.first);
    if (kept) for (const e of events) kept.push(e);
  }

  /**
   * Creates the file of a new segment. One already there by that name was left by a failed write: it starts at
   * the next sequence number, so it holds no event any caller was told is journaled, and is replaced.
   */
  private async createSegmentFile(path: string): Promise<AppendFile> {
    try {
      return await this.driver.createAppendFile!(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      await this.driver.delete(path);
      return await this.driver.createAppendFile!(path);
    }
  }

  /** Events per appended-to segment: small enough that the bound on events can drop whole segments. */
  private segmentEvents(): number {
    return Math.max(1, Math.min(SEGMENT_EVENTS, Math.floor(this.opts.maxEvents / 4)));
  }

  /** Closes the open segment and gives it its final name; an empty one is removed. */
  private async seal(): Promise<void> {
    const a = this.active;
    if (!a) return;
    this.active = undefined;
    await a.file.close();
    const from = `${this.dir}/${a.seg.name}`;
    if (a.seg.count === 0) {
      this.segments = this.segments.filter((s) => s !== a.seg);
      this.recent.delete(a.seg.first);
      await this.driver.delete(from);
      return;
    }
    const name = segmentName(a.seg);
    await this.driver.move(from, `${this.dir}/${name}`);
    a.seg.name = name;
    a.seg.open = false;
  }

  /** Seals the open segment, so the next process finds every segment named. */
  async close(): Promise<void> {
    await this.whenIdle();
    await this.seal();
  }

  /** Resolves once no batch is being written. */
  private async whenIdle(): Promise<void> {
    while (this.writing) await new Promise((r) => setTimeout(r, 5));
  }

  /**
   * A segment found open: the writer seals what a previous process left (its complete lines: a line torn by
   * a crash belonged to a request that was never answered); a reader counts them and leaves it be.
   */
  private async openedSegment(name: string, first: number): Promise<Segment | undefined> {
    const bytes = await this.driver.getContent(`${this.dir}/${name}`);
    if (!bytes) return undefined;
    const count = parseLines(bytes).length;
    const ms = Date.now();
    if (!this.opts.writer) return count > 0 ? { first, count, ms, name, open: true } : undefined;
    if (count === 0) {
      await this.driver.delete(`${this.dir}/${name}`);
      return undefined;
    }
    const sealed = segmentName({ first, count, ms });
    await this.driver.move(`${this.dir}/${name}`, `${this.dir}/${sealed}`);
    return { first, count, ms, name: sealed, open: false };
  }
}

/** The events of a segment's bytes; a torn or hand-edited line is skipped rather than stopping delivery. */
function parseLines(bytes: Buffer): RegistryEvent[] {
  const events: RegistryEvent[] = [];
  for (const line of bytes.toString('utf8').split('\n')) {
    if (!line) continue;
    try {
      events.push(JSON.parse(line) as RegistryEvent);
    } catch {
      // skipped
    }
  }
  return events;
}
