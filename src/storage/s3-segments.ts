// Appendable upload data on S3, which cannot append: a base object plus part objects, joined on read.
import { Readable, Writable } from 'node:stream';
import type { FileWriter } from './driver.js';
import { MIN_CHUNK, type S3Bucket, type S3Object } from './s3-bucket.js';
import { isNotFound } from './s3-errors.js';

/** Writer parts are named by their start offset, zero-padded so S3's lexical listing is numeric order. */
const OFFSET_DIGITS = 16;
/** The folder beside a segmented object's base object that holds its parts. */
export const PARTS_SUFFIX = '.parts';

/**
 * S3 cannot append, so an upload session's `data` is a base object (written whole by putContent) plus
 * part objects under `data.parts/<offset>`, one per writer flush, which reader and stat join into one.
 * Only upload data is appended to, so only those paths pay the extra listing.
 */
const SEGMENTED = /(^|\/)_uploads\/[^/]+\/data$/;

/** Whether a path is upload data, stored as a base object plus parts. */
export function isSegmented(path: string): boolean {
  return SEGMENTED.test(path);
}

/** The writer parts of a segmented object, in offset order. */
export async function parts(b: S3Bucket, path: string): Promise<S3Object[]> {
  const out: S3Object[] = [];
  for await (const p of b.listAll(`${b.key(path)}${PARTS_SUFFIX}/`)) out.push(p);
  return out.sort((a, z) => (a.key < z.key ? -1 : a.key > z.key ? 1 : 0));
}

/** The base object and part objects of a segmented path that hold bytes, in offset order. */
export async function pieces(b: S3Bucket, path: string): Promise<S3Object[]> {
  const k = b.key(path);
  const base = await b.head(k);
  const all = [...(base ? [{ key: k, size: base.size, modified: base.modified }] : []), ...(await parts(b, path))];
  return all.filter((p) => p.size > 0);
}

/** A stream of one object's bytes from `offset`, `length` of them or to its end. */
export async function range(b: S3Bucket, key: string, offset: number, length?: number): Promise<Readable> {
  const { sdk, c } = await b.connect();
  if (length === 0) return Readable.from([], { objectMode: false });
  const range =
    offset > 0 || length !== undefined
      ? `bytes=${offset}-${length === undefined ? '' : offset + length - 1}`
      : undefined;
  try {
    const out = await c.send(new sdk.GetObjectCommand({ Bucket: b.name, Key: key, Range: range }));
    return out.Body as Readable;
  } catch (e) {
    if (isNotFound(e)) throw Object.assign(new Error(`no such object: ${key}`), { code: 'ENOENT' });
    throw e;
  }
}

/** A stream of a segmented object's joined bytes from `offset`, `length` of them or to its end. */
export async function joinedReader(b: S3Bucket, path: string, offset = 0, length?: number): Promise<Readable> {
  const base = await b.head(b.key(path));
  if (!base) throw Object.assign(new Error(`no such object: ${path}`), { code: 'ENOENT' });
  const all: S3Object[] = [{ key: b.key(path), size: base.size, modified: base.modified }, ...(await parts(b, path))];
  const end = length === undefined ? Infinity : offset + length;
  // One piece open at a time: memory stays at one response's buffer, whatever the number of parts.
  async function* joined(): AsyncGenerator<Buffer> {
    let pos = 0;
    for (const p of all) {
      const from = Math.max(offset, pos);
      const to = Math.min(end, pos + p.size);
      if (to > from) yield* (await range(b, p.key, from - pos, to - from)) as AsyncIterable<Buffer>;
      pos += p.size;
      if (pos >= end) break;
    }
  }
  return Readable.from(joined(), { objectMode: false });
}

/** A writer that appends to a segmented object holding `start` bytes, one part object per chunk. */
export async function partWriter(b: S3Bucket, path: string, start: number): Promise<FileWriter> {
  const { sdk, c } = await b.connect();
  const written: string[] = [];
  let flushed = start;
  let queued = start;
  let pending: Buffer[] = [];
  let pendingSize = 0;
  let inflight: Promise<void> | undefined;
  let cancelled = false;
  // Only a part's own bytes are copied into one buffer; what stays behind stays in the chunks it came in,
  // so four writers at once hold their parts and little more (joining all of `pending` and copying the
  // rest back out held two extra copies per writer at the peak).
  const takePart = (size: number): Buffer => {
    let n = 0;
    let got = 0;
    while (n < pending.length && got + pending[n]!.length <= size) got += pending[n++]!.length;
    const pieces = pending.splice(0, n);
    if (got < size) {
      const head = pending[0]!;
      pieces.push(head.subarray(0, size - got));
      pending[0] = head.subarray(size - got);
    }
    pendingSize -= size;
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, size);
  };
  const partKey = (off: number) => `${b.key(path)}${PARTS_SUFFIX}/${String(off).padStart(OFFSET_DIGITS, '0')}`;
  // Each part is one PutObject named by its offset. One is in flight while the next chunk arrives, so the
  // request is not paused for S3's round trip; memory is bounded by about three chunks per writer.
  const flush = async (final: boolean): Promise<void> => {
    // Kept in `inflight` while awaited, so that cancel waits for it too.
    if (inflight) await inflight;
    if (pendingSize === 0 || cancelled) return;
    // Mid-stream, at least MIN_CHUNK stays behind, so that the last part is big enough for the commit to
    // copy it on the server (UploadPartCopy wants every part but the last to be 5 MiB or more).
    const body = takePart(final ? pendingSize : b.chunk);
    const k = partKey(queued);
    queued += body.length;
    written.push(k);
    inflight = c
      .send(new sdk.PutObjectCommand({ Bucket: b.name, Key: k, Body: body, ContentLength: body.length }))
      .then(() => {
        flushed += body.length;
      });
    // Its failure is reported by the next flush or by drain; until then it must not count as unhandled.
    inflight.catch(() => undefined);
  };
  const drain = async (): Promise<void> => {
    await flush(true);
    await inflight;
  };
  let received = 0;
  const stream = new Writable({
    write: (chunk: Buffer, _enc, cb) => {
      pending.push(chunk);
      pendingSize += chunk.length;
      received += chunk.length;
      if (pendingSize >= b.chunk + MIN_CHUNK) flush(false).then(() => cb(), cb);
      else cb();
    },
    final: (cb) => {
      drain().then(() => cb(), cb);
    },
  });
  return {
    stream,
    size: () => start + received,
    readable: () => flushed,
    commit: async () => {
      // The stream's final already drained; this only covers a writer ended without finishing.
      await drain();
    },
    cancel: async () => {
      cancelled = true;
      pending = [];
      pendingSize = 0;
      if (!stream.destroyed) stream.destroy();
      // A part still being sent could land after the delete below: let it finish (or fail) first.
      await inflight?.catch(() => undefined);
      // Undo this writer's parts so the upload stays at the offset the client was last told.
      await b.deleteKeys(written);
    },
  };
}
