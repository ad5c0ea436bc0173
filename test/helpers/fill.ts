import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import type { Digest } from '../../src/oci/digest.js';
import type { BlobFill } from '../../src/proxy/blob-fill.js';

// What the cache-fill tests feed a fill and read from it, on any storage driver.

export const KiB = 1024;
export const MiB = 1024 * KiB;
/** The size of one upstream chunk. */
export const CHUNK = 64 * KiB;

/** A blob made by `blobOf`. */
export type TestFillBlob = ReturnType<typeof blobOf>;

/**
 * A blob of `count` chunks made on the fly (never whole in memory): a random block with the chunk's
 * number stamped in, so a chunk served at the wrong offset changes the digest.
 */
export function blobOf(count: number) {
  const block = randomBytes(CHUNK);
  const chunk = (i: number) => {
    const b = Buffer.allocUnsafe(CHUNK);
    block.copy(b);
    b.writeUInt32BE(i, (i * 7) % (CHUNK - 4));
    return b;
  };
  const h = createHash('sha256');
  for (let i = 0; i < count; i++) h.update(chunk(i));
  return { size: count * CHUNK, digest: `sha256:${h.digest('hex')}` as Digest, chunk, count };
}

/** The digest of bytes [start, end) of a blob made by `blobOf`. */
export function digestOfRange(blob: TestFillBlob, start: number, end: number): string {
  const h = createHash('sha256');
  for (let i = Math.floor(start / CHUNK); i * CHUNK < end; i++) {
    const from = Math.max(0, start - i * CHUNK);
    const to = Math.min(CHUNK, end - i * CHUNK);
    h.update(blob.chunk(i).subarray(from, to));
  }
  return `sha256:${h.digest('hex')}`;
}

/** An upstream body: the blob's chunks, with `before(i)` awaited before chunk i (pacing, pauses, failures). */
export function upstream(
  blob: TestFillBlob,
  before?: (i: number) => Promise<void> | void,
  count = blob.count,
): Readable {
  return Readable.from(
    (async function* () {
      for (let i = 0; i < count; i++) {
        await before?.(i);
        yield blob.chunk(i);
      }
    })(),
    { objectMode: false, highWaterMark: CHUNK },
  );
}

/** A client: hashes and counts what it is sent; can stop taking bytes (hold) until released, or take them slowly. */
export class Client extends Writable {
  readonly hash = createHash('sha256');
  bytes = 0;
  private holdAt = Infinity;
  private held?: () => void;
  onHeld?: () => void;

  constructor(private readonly slow = false) {
    super({ highWaterMark: CHUNK });
  }

  /** Stops taking bytes once it has `n` of them. */
  holdFrom(n: number): void {
    this.holdAt = n;
  }

  release(): void {
    this.holdAt = Infinity;
    const go = this.held;
    this.held = undefined;
    go?.();
  }

  get isHeld(): boolean {
    return this.held !== undefined;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (this.bytes >= this.holdAt) {
      this.held = done;
      this.onHeld?.();
      return;
    }
    if (this.slow) setImmediate(done);
    else done();
  }

  digest(): string {
    return `sha256:${this.hash.copy().digest('hex')}`;
  }
}

/** Waits (bounded) until `cond` holds. */
export async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * An upstream that dies before chunk `failAt`, with one reader caught up and one held behind: resolves
 * once the fill has failed and both readers have been cut (asserted), whatever storage the fill writes to.
 */
export async function failMidBlob(
  start: (body: Readable) => Promise<BlobFill>,
  blob: TestFillBlob,
  failAt: number,
): Promise<{ fill: BlobFill; caughtUp: Client; behind: Client }> {
  const caughtUp = new Client();
  const behind = new Client();
  behind.holdFrom(256 * KiB);
  const body = upstream(blob, async (i) => {
    await tick();
    if (i === failAt) throw new Error('upstream connection reset');
  });
  const fill = await start(body);
  const results = Promise.allSettled([fill.pipeTo(caughtUp, 0, blob.size), fill.pipeTo(behind, 0, blob.size)]);
  await fill.finished;
  assert.equal(fill.state, 'failed');
  assert.match(fill.error?.message ?? '', /connection reset/);
  behind.release();
  const [a, b] = await results;
  assert.equal(a.status, 'rejected');
  assert.equal(b.status, 'rejected');
  assert.ok(caughtUp.bytes < blob.size && behind.bytes < blob.size);
  return { fill, caughtUp, behind };
}

/**
 * A reader that stops taking bytes after 1 MiB while a fast one keeps up; once chunk `releaseAt` is due,
 * with the fill still running, it goes on and must reach `catchUpTo` bytes before the fill does.
 * Resolves when the fill has ended, with both readers' and the fill's state checked.
 */
export async function farBehindReader(
  start: (body: Readable) => Promise<BlobFill>,
  blob: TestFillBlob,
  releaseAt: number,
  catchUpTo: number,
  timeoutMs?: number,
): Promise<BlobFill> {
  const slow = new Client();
  const fast = new Client();
  slow.holdFrom(1 * MiB);
  let slowHeld!: () => void;
  const heldNow = new Promise<void>((resolve) => (slowHeld = resolve));
  slow.onHeld = () => slowHeld();
  let runningAtRelease: string | undefined;
  let fill: BlobFill | undefined;
  const body = upstream(blob, async (i) => {
    await tick();
    if (i === 32) await heldNow;
    if (i === releaseAt) {
      runningAtRelease = fill?.state;
      slow.release();
      await until(() => slow.bytes >= catchUpTo, 'the slow reader to read from storage', timeoutMs);
    }
  });
  fill = await start(body);
  await Promise.all([fill.pipeTo(slow, 0, blob.size), fill.pipeTo(fast, 0, blob.size)]);
  await fill.finished;
  assert.equal(fill.state, 'done', fill.error?.message);
  assert.equal(runningAtRelease, 'running');
  assert.equal(fast.digest(), blob.digest);
  assert.equal(slow.bytes, blob.size);
  assert.equal(slow.digest(), blob.digest);
  return fill;
}
