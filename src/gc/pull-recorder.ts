import type { Digest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/name.js';
import { limiter } from '../async/limit.js';
import type { StorageDriver } from '../storage/driver.js';
import { mergePulls, noPulls, readNodePulls, writeNodePulls, type PullTimes } from './pulls.js';

/** Distinct tags and digests held between flushes; past it, pulls of new names wait for the next batch. */
const PENDING_MAX = 200_000;
/** Repositories written at once by a flush. */
const WRITES_AT_ONCE = 4;

/** Where the recorder reports a flush it could not write. */
export interface PullLog {
  warn(o: object, msg: string): void;
}

/** What the recorder needs besides the storage. */
export interface PullRecorderOptions {
  /** This node's name: it writes only `_nodes/<node>.json`. */
  node: string;
  /** Time between flushes. */
  flushMs: number;
  /** False: keep the times in memory only (the storage takes no writes). */
  write: boolean;
  log: PullLog;
  now?: () => number;
}

/** True for a storage error that says this node may not write (a read-only mount, keys that can only read). */
function isRefusedWrite(e: unknown): boolean {
  const err = e as { code?: string; name?: string; $metadata?: { httpStatusCode?: number } };
  return (
    ['EACCES', 'EPERM', 'EROFS'].includes(err?.code ?? '') ||
    err?.name === 'AccessDenied' ||
    err?.$metadata?.httpStatusCode === 403
  );
}

/**
 * Gathers pull times in memory and writes them in batches. `record` is what the request path calls: it
 * updates a map and returns, so no pull ever waits for storage. A flush runs every `flushMs` (one at a time:
 * while one is stuck on a slow storage, the next tick skips and the batch grows) and on close; a batch whose
 * write failed is kept for the next flush. Only this node's own file is read and written.
 */
export class PullRecorder {
  private pending = new Map<RepositoryName, PullTimes>();
  private size = 0;
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private memoryOnly: boolean;
  private warnedFull = false;
  private readonly now: () => number;

  constructor(
    private readonly driver: StorageDriver,
    private readonly options: PullRecorderOptions,
  ) {
    this.memoryOnly = !options.write;
    this.now = options.now ?? Date.now;
  }

  /** Records a pull: of `tag` resolving to `digest`, or of `digest` alone. No I/O, no await. */
  record(repository: RepositoryName, tag: string | undefined, digest: Digest): void {
    const at = this.now();
    let times = this.pending.get(repository);
    if (!times) {
      if (this.full()) return;
      times = noPulls();
      this.pending.set(repository, times);
    }
    if (tag !== undefined && (times.tags.has(tag) || !this.full())) {
      if (!times.tags.has(tag)) this.size++;
      times.tags.set(tag, at);
    }
    if (times.manifests.has(digest) || !this.full()) {
      if (!times.manifests.has(digest)) this.size++;
      times.manifests.set(digest, at);
    }
  }

  private full(): boolean {
    if (this.size < PENDING_MAX) return false;
    if (!this.warnedFull) {
      this.warnedFull = true;
      const msg = 'pull times: too many unwritten entries; pulls of new names are not recorded until a flush';
      this.options.log.warn({ entries: this.size }, msg);
    }
    return true;
  }

  /** The times gathered and not yet written (in memory only: all of them) for one repository. */
  unwritten(repository: RepositoryName): PullTimes {
    return mergePulls(noPulls(), this.pending.get(repository) ?? noPulls());
  }

  /** Starts the periodic flush. */
  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.options.flushMs);
    this.timer.unref();
  }

  /** Writes what was gathered; a flush already running is joined, not doubled. Never rejects. */
  flush(): Promise<void> {
    if (this.memoryOnly) return Promise.resolve();
    this.flushing ??= this.writeBatch().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Stops the timer and writes the last batch, waiting at most `waitMs` for a storage that does not answer. */
  async close(waitMs = 10_000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.flushing) await this.bounded(this.flushing, waitMs);
    await this.bounded(this.flush(), waitMs);
  }

  private async bounded(p: Promise<void>, ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => (timer = setTimeout(r, ms)));
    await Promise.race([p, late]);
    clearTimeout(timer);
  }

  private async writeBatch(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.size = 0;
    this.warnedFull = false;
    const limit = limiter(WRITES_AT_ONCE);
    await Promise.all(
      [...batch].map(([repository, times]) =>
        limit(async () => {
          try {
            const own = (await readNodePulls(this.driver, repository, this.options.node)) ?? noPulls();
            await writeNodePulls(this.driver, repository, this.options.node, mergePulls(own, times));
          } catch (e) {
            this.keep(repository, times);
            if (isRefusedWrite(e)) {
              const msg = 'pull times: the storage refuses writes; keeping them in memory only';
              if (!this.memoryOnly) this.options.log.warn({ err: e }, msg);
              this.memoryOnly = true;
            } else {
              this.options.log.warn(
                { err: e, repository },
                'pull times: could not write; retrying with the next batch',
              );
            }
          }
        }),
      ),
    );
  }

  /** Puts an unwritten batch back, under the later times gathered meanwhile. */
  private keep(repository: RepositoryName, times: PullTimes): void {
    const current = this.pending.get(repository);
    if (current) {
      this.size -= current.tags.size + current.manifests.size;
      mergePulls(times, current);
    }
    this.pending.set(repository, times);
    this.size += times.tags.size + times.manifests.size;
  }
}
