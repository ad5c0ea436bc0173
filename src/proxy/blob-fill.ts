import { createHash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { parseDigest, type Digest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/name.js';
import type { BlobStore } from '../storage/blobs.js';
import type { StorageDriver } from '../storage/driver.js';
import { uploadDataPath, uploadPath } from '../storage/layout.js';
import type { UploadStore } from '../storage/uploads.js';

/** Where a fill gets its bytes: an upstream response body and the size it announced. */
export interface FillSource {
  body: Readable;
  size: number;
  /** Told of every chunk that arrives (metrics). */
  onBytes?: (n: number) => void;
}

/**
 * One upstream download of one blob into storage, which any number of clients read while it grows.
 *
 * Why: N clients pulling the same cold layer must cost one upstream download (Distribution fetches it N
 * times), and none of them should wait for the whole blob before its first byte. The bytes go into an
 * upload session of the cache repository (so upload purging removes what a crash leaves), hashed as they
 * arrive; the blob becomes visible under its digest only after the digest and size are verified. The
 * fill belongs to no client: a client that hangs up stops reading, the fill goes on.
 */
export class BlobFill {
  /** Bytes written to the session file so far (each visible to readers once counted). */
  written = 0;
  state: 'running' | 'done' | 'failed' = 'running';
  error?: Error;
  /** Settles when the fill ends; never rejects (failure is in `state` and `error`). */
  readonly finished: Promise<void>;
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
        await onDone(true).catch(() => undefined);
        this.wake();
      },
      async (e: Error) => {
        this.error = e;
        this.state = 'failed';
        await this.deps.driver.delete(uploadPath(this.repository, this.id)).catch(() => undefined);
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

  /** Resolves once more than `pos` bytes are readable, or the fill has ended. */
  private until(pos: number): Promise<void> {
    if (this.written > pos || this.state !== 'running') return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private async run(source: FillSource): Promise<void> {
    if (source.size !== this.size) throw new Error(`upstream announced ${source.size} bytes for ${this.digest}, the manifest says ${this.size}`);
    const { algorithm } = parseDigest(this.digest);
    const hash = createHash(algorithm);
    const writer = await this.deps.driver.writer(this.dataPath);
    try {
      for await (const chunk of source.body as AsyncIterable<Buffer>) {
        if (this.written + chunk.length > this.size) throw new Error(`upstream sent more than the ${this.size} bytes of ${this.digest}`);
        hash.update(chunk);
        await new Promise<void>((resolve, reject) => writer.stream.write(chunk, (e) => (e ? reject(e) : resolve())));
        this.written += chunk.length;
        source.onBytes?.(chunk.length);
        this.wake();
      }
      if (this.written !== this.size) throw new Error(`upstream ended ${this.digest} after ${this.written} of ${this.size} bytes`);
      await new Promise<void>((resolve, reject) => writer.stream.end((e?: Error | null) => (e ? reject(e) : resolve())));
      await writer.commit();
    } catch (e) {
      source.body.destroy();
      await writer.cancel().catch(() => undefined);
      throw e;
    }
    const actual = `${algorithm}:${hash.digest('hex')}`;
    if (actual !== this.digest) throw new Error(`upstream sent content with digest ${actual} for ${this.digest}`);
    await this.deps.blobs.adopt(this.dataPath, this.digest);
    await this.deps.driver.delete(uploadPath(this.repository, this.id));
  }

  /**
   * Writes bytes [start, end) into `out` as they become readable: from the session file while the fill
   * runs, from the blob store once it is done. Rejects when the fill fails or `out` closes.
   */
  async pipeTo(out: Writable, start: number, end: number): Promise<void> {
    let pos = start;
    let gone = false;
    const onClose = () => {
      gone = true;
      this.wake();
    };
    out.once('close', onClose);
    try {
      while (pos < end) {
        await this.until(pos);
        if (gone || out.destroyed) throw new Error('the client went away');
        if (this.state === 'failed') throw this.error ?? new Error('the upstream download failed');
        const done = this.state === 'done';
        const avail = Math.min(done ? this.size : this.written, end);
        if (avail <= pos) continue;
        let stream: Readable;
        try {
          stream = done ? await this.deps.blobs.open(this.digest, pos, avail - pos) : await this.deps.driver.reader(this.dataPath, pos, avail - pos);
        } catch (e) {
          // The session file was moved into the blob store between the check and the open: look again.
          if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !done) continue;
          throw e;
        }
        try {
          for await (const chunk of stream as AsyncIterable<Buffer>) {
            pos += chunk.length;
            if (!out.write(chunk)) {
              await new Promise<void>((resolve) => {
                const go = () => {
                  out.off('drain', go);
                  out.off('close', go);
                  resolve();
                };
                out.once('drain', go);
                out.once('close', go);
              });
            }
            if (gone || out.destroyed) throw new Error('the client went away');
          }
        } finally {
          stream.destroy();
        }
      }
    } finally {
      out.off('close', onClose);
    }
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
  start(digest: Digest, size: number, repository: RepositoryName, open: () => Promise<FillSource>, onDone: () => Promise<void>): Promise<BlobFill> {
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
