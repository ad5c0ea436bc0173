import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';
import { parseDigest, type Digest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/name.js';
import type { BlobStore } from '../storage/blobs.js';
import type { FileWriter, StorageDriver } from '../storage/driver.js';
import { uploadDataPath } from '../storage/layout.js';
import { release } from '../transport/bounded.js';
import type { UploadStore } from '../storage/uploads.js';

/** Where a fill gets its bytes: an upstream response body and the size it announced. */
export interface FillSource {
  body: Readable;
  size: number;
  /** Told of every chunk that arrives (metrics). */
  onBytes?: (n: number) => void;
}

/**
 * At most this many of the latest bytes are kept in memory for readers that are a little behind. Readers
 * within the window are sent the fill's own chunks (no file read at all); one that falls further behind
 * reads from the session file. Memory per fill stays this plus what the file stream buffers, whatever the
 * blob's size.
 */
const WINDOW_BYTES = 8 << 20;
/** A window of many tiny chunks keeps more memory alive than their lengths say (each is a view of a larger read buffer). */
const WINDOW_CHUNKS = 256;
/** At most this much is handed to one client's socket in one go (one corked writev), so a fast reader takes few turns. */
const BATCH_BYTES = 1 << 20;

/** Waits until `stream` can take more (drain), or is finished with (error, close); never rejects. */
function drained(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed) return resolve();
    const go = () => {
      stream.off('drain', go);
      stream.off('error', go);
      stream.off('close', go);
      resolve();
    };
    stream.on('drain', go);
    stream.on('error', go);
    stream.on('close', go);
  });
}

const ignore = (): void => undefined;

/**
 * One upstream download of one blob into storage, which any number of clients read while it grows.
 *
 * Why: N clients pulling the same cold layer must cost one upstream download (Distribution fetches it N
 * times), and none of them should wait for the whole blob before its first byte. The bytes go into an
 * upload session of the cache repository (so upload purging removes what a crash leaves), hashed as they
 * arrive; the blob becomes visible under its digest only after the digest and size are verified. The
 * fill belongs to no client: a client that hangs up stops reading, the fill goes on.
 *
 * Readers are served from the cheapest place that has their next byte: the fill's latest chunks in
 * memory while they keep up, the session file (large ranges, reused buffers) when they fall behind,
 * the blob store once the blob is in place.
 */
export class BlobFill {
  /** Bytes written to the session file so far (counted when the file write completes). */
  written = 0;
  /** Bytes received from upstream and hashed so far; the latest of them are in `chunks`. */
  private received = 0;
  state: 'running' | 'done' | 'failed' = 'running';
  error?: Error;
  /** Settles when the fill ends; never rejects (failure is in `state` and `error`). */
  readonly finished: Promise<void>;
  /** The newest chunks from upstream, in order; `starts[i]` is the blob offset of `chunks[i]`. */
  private chunks: Buffer[] = [];
  private starts: number[] = [];
  private windowBytes = 0;
  /** Where each client reading this fill is; chunks in memory are kept for those in the window. */
  private readonly cursors = new Set<{ pos: number }>();
  /** True once the verified blob is in the blob store (the session file is gone from then on). */
  private stored = false;
  private waiters: (() => void)[] = [];
  private readonly dataPath: string;

  constructor(
    readonly digest: Digest,
    readonly size: number,
    private readonly repository: RepositoryName,
    private readonly id: string,
    private readonly deps: { driver: StorageDriver; blobs: BlobStore; uploads: UploadStore },
    source: FillSource,
    onDone: (ok: boolean) => Promise<void>,
  ) {
    this.dataPath = uploadDataPath(repository, id);
    this.finished = this.run(source).then(
      async () => {
        this.state = 'done';
        this.dropWindow();
        await onDone(true).catch(() => undefined);
        this.wake();
      },
      async (e: Error) => {
        this.error = e;
        this.state = 'failed';
        this.dropWindow();
        // Readers are cut at once; the cleanup below does not need them.
        this.wake();
        await this.deps.uploads.discard(this.repository, this.id).catch(() => undefined);
        await onDone(false).catch(() => undefined);
        this.wake();
      },
    );
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves at the next change a reader may wait for: bytes received or written, the blob stored, the fill ended. */
  private change(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private dropWindow(): void {
    this.chunks = [];
    this.starts = [];
    this.windowBytes = 0;
  }

  /** Offset of the oldest byte still in memory (`received` when none is). */
  private get windowStart(): number {
    return this.starts[0] ?? this.received;
  }

  /**
   * Drops the oldest chunks that no reader in the window still needs, and beyond the window's budget those
   * that slow readers do (they go to the file). Only chunks already in the file go: a reader that finds
   * its byte before the window can always read it from the file.
   *
   * Why not keep the budget's worth always: chunks held that long outlive the young generation, and each
   * is then freed only by a full garbage collection, which costs more than the file reads it saves.
   */
  private trim(): void {
    if (this.chunks.length === 0) return;
    let floor = this.written;
    const from = this.windowStart;
    for (const r of this.cursors) if (r.pos >= from && r.pos < floor) floor = r.pos;
    let drop = 0;
    while (drop < this.chunks.length) {
      const end = this.starts[drop]! + this.chunks[drop]!.length;
      if (end > this.written) break;
      if (end > floor && this.windowBytes <= WINDOW_BYTES && this.chunks.length - drop <= WINDOW_CHUNKS) break;
      this.windowBytes -= this.chunks[drop]!.length;
      drop++;
    }
    if (drop > 0) {
      this.chunks.splice(0, drop);
      this.starts.splice(0, drop);
    }
  }

  private async run(source: FillSource): Promise<void> {
    const { algorithm } = parseDigest(this.digest);
    const hash = createHash(algorithm);
    let writer: FileWriter;
    try {
      if (source.size !== this.size)
        throw new Error(`upstream announced ${source.size} bytes for ${this.digest}, the manifest says ${this.size}`);
      writer = await this.deps.driver.writer(this.dataPath);
    } catch (e) {
      // An unread body holds its upstream connection (paused, past undici's body timeout) for good.
      release(source.body);
      throw e;
    }
    const file = writer.stream;
    // A failed write is reported to its callback and as an event; the loop below picks it up from here.
    let writeError: Error | undefined;
    const onWriteError = (e: Error) => {
      writeError ??= e;
    };
    file.on('error', onWriteError);
    const verify = () => {
      const actual = `${algorithm}:${hash.digest('hex')}`;
      if (actual !== this.digest) throw new Error(`upstream sent content with digest ${actual} for ${this.digest}`);
    };
    try {
      for await (const chunk of source.body as AsyncIterable<Buffer>) {
        if (writeError) throw writeError;
        if (chunk.length === 0) continue;
        const at = this.received;
        const end = at + chunk.length;
        if (end > this.size) throw new Error(`upstream sent more than the ${this.size} bytes of ${this.digest}`);
        hash.update(chunk);
        source.onBytes?.(chunk.length);
        // The last chunk is shown to readers only once the whole blob is verified: a client never gets
        // every byte of a blob that does not match its digest, it gets a cut connection.
        if (end === this.size) verify();
        this.received = end;
        this.chunks.push(chunk);
        this.starts.push(at);
        this.windowBytes += chunk.length;
        // Writes are not awaited one by one: the file stream queues them (and writes the queue at once),
        // and the loop waits only when it pushes back. Its callbacks run in order.
        const more = file.write(chunk, (e) => {
          if (e) return onWriteError(e);
          // A driver that holds bytes back (S3, until a part is full) says how far readers can read:
          // the chunks past that stay in memory until they can.
          this.written = writer.readable?.() ?? end;
          this.trim();
          this.wake();
        });
        this.trim();
        this.wake();
        if (!more) await drained(file);
      }
      if (writeError) throw writeError;
      if (this.received !== this.size)
        throw new Error(`upstream ended ${this.digest} after ${this.received} of ${this.size} bytes`);
      if (this.size === 0) verify();
      await new Promise<void>((resolve, reject) => file.end((e?: Error | null) => (e ? reject(e) : resolve())));
      if (writeError) throw writeError;
      // Ending flushed what a driver held back.
      this.written = writer.readable?.() ?? this.received;
      this.trim();
      this.wake();
      await writer.commit();
    } catch (e) {
      release(source.body);
      await writer.cancel().catch(() => undefined);
      throw e;
    } finally {
      // Keeps listening: a stream can report an error once more after the one that ended the fill.
      file.on('error', ignore);
      file.off('error', onWriteError);
    }
    await this.deps.blobs.adopt(this.dataPath, this.digest);
    this.stored = true;
    this.dropWindow();
    this.wake();
    await this.deps.uploads.discard(this.repository, this.id);
  }

  /**
   * Writes bytes [start, end) into `out` as they become readable: from memory or the session file while
   * the fill runs, from the blob store once it is stored. Rejects when the fill fails or `out` closes.
   */
  async pipeTo(out: Writable, start: number, end: number): Promise<void> {
    const at = { pos: start };
    let gone = out.destroyed;
    const onClose = () => {
      gone = true;
      this.wake();
    };
    out.once('close', onClose);
    // A write to a client that has gone can be reported as an error event a tick later; with no listener
    // that would end the process. Left in place on purpose (the response is finished with anyway).
    out.on('error', ignore);
    this.cursors.add(at);
    try {
      while (at.pos < end) {
        if (gone || out.destroyed) throw new Error('the client went away');
        if (this.state === 'failed') throw this.error ?? new Error('the upstream download failed');
        if (this.stored) {
          await this.deps.blobs.sendTo(this.digest, out, at.pos, end - at.pos);
          at.pos = end;
          break;
        }
        if (at.pos >= this.windowStart && at.pos < this.received) {
          await this.sendFromMemory(out, at, end);
          continue;
        }
        if (at.pos < this.written) {
          const from = at.pos;
          const to = Math.min(this.written, end);
          // Where this reader will be once the file has sent what it has: the window keeps the chunks from
          // there (within its budget), so the reader goes on from memory instead of chasing the file.
          at.pos = to;
          try {
            await this.sendFromFile(out, from, to - from);
          } catch (e) {
            at.pos = from;
            // The file moved into the blob store (or went with a failed fill) after the checks above:
            // the change that follows says which; `stored` or `state` is already set if it has come.
            if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
            if (!this.stored && this.state === 'running') await this.change();
          }
          continue;
        }
        await this.change();
      }
    } finally {
      this.cursors.delete(at);
      this.trim();
      out.off('close', onClose);
    }
  }

  /**
   * Hands `out` the chunks in memory from the reader's position (at most a batch, corked into one write),
   * moves the position past them, then waits until `out` can take more.
   */
  private async sendFromMemory(out: Writable, at: { pos: number }, end: number): Promise<void> {
    let i = this.indexOf(at.pos);
    let batch = 0;
    let more = true;
    out.cork();
    while (i < this.chunks.length && at.pos < end && batch < BATCH_BYTES) {
      const chunk = this.chunks[i]!;
      const from = at.pos - this.starts[i]!;
      const to = Math.min(chunk.length, end - this.starts[i]!);
      const part = from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to);
      more = out.write(part);
      at.pos += part.length;
      batch += part.length;
      i++;
    }
    out.uncork();
    // What `out` holds now is its own to keep: the window need not.
    this.trim();
    if (!more) await drained(out);
  }

  /** The index of the chunk in memory that holds byte `pos` (which must be in the window). */
  private indexOf(pos: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * Sends a range the session file already has, for a reader that fell behind the window: one open and
   * reused buffers for the whole range, which covers everything written so far.
   */
  private async sendFromFile(out: Writable, offset: number, length: number): Promise<void> {
    const { driver } = this.deps;
    if (!driver.sendTo) {
      await pipeline(await driver.reader(this.dataPath, offset, length), out, { end: false });
      return;
    }
    await driver.sendTo(this.dataPath, out, offset, length);
  }
}

/** Starts fills and hands a running one to every client that asks for the same digest. */
export class BlobFills {
  private readonly running = new Map<Digest, Promise<BlobFill>>();

  constructor(private readonly deps: { driver: StorageDriver; blobs: BlobStore; uploads: UploadStore }) {}

  /**
   * Starts a fill, or joins the one under way for the digest: `open` is called once, for the first
   * asker, to get the upstream body; `onDone` runs when the blob is in place (link it into the repository).
   */
  start(
    digest: Digest,
    size: number,
    repository: RepositoryName,
    open: () => Promise<FillSource>,
    onDone: () => Promise<void>,
  ): Promise<BlobFill> {
    const under = this.running.get(digest);
    if (under) return under;
    const p = (async () => {
      const id = await this.deps.uploads.start(repository);
      let source: FillSource;
      try {
        source = await open();
      } catch (e) {
        await this.deps.uploads.cancel(repository, id).catch(() => undefined);
        throw e;
      }
      return new BlobFill(digest, size, repository, id, this.deps, source, async (ok) => {
        if (ok) await onDone();
      });
    })();
    this.running.set(digest, p);
    const forget = () => {
      if (this.running.get(digest) === p) this.running.delete(digest);
    };
    // Kept until the fill ends, so askers in the meantime join it; a failed start is forgotten at once.
    p.then((fill) => fill.finished.then(forget), forget);
    return p;
  }

  /** Waits for every fill under way (on shutdown). */
  async settle(): Promise<void> {
    await Promise.all([...this.running.values()].map((p) => p.then((f) => f.finished).catch(() => undefined)));
  }
}
