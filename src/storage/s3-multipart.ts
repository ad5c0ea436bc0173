// Commits a segmented upload into one object with S3 multipart uploads, recorded so a crash leaves none open.
import type { ListMultipartUploadsCommandOutput } from '@aws-sdk/client-s3';
import { MIN_CHUNK, type S3Bucket, type S3Object } from './s3-bucket.js';
import { isNotImplemented } from './s3-errors.js';
import { joinedReader, pieces } from './s3-segments.js';

/** The most one CopyObject or UploadPartCopy takes, and the most parts one multipart upload has. */
const MAX_COPY = 5 * 1024 ** 3;
const MAX_PARTS = 10_000;
/** Server-side part copies sent at once at commit (Distribution copies 32 MiB ranges in parallel too). */
const COPY_CONCURRENCY = 4;
/**
 * Beside a session's `data`, the multipart upload its commit has open: written before the first part is
 * sent, so a process killed mid-commit leaves a record that upload purging (or the next commit) aborts.
 */
export const MULTIPART_SUFFIX = '.multipart';

/** What a multipart record says: which upload of which key to abort. */
interface MultipartRecord {
  key: string;
  uploadId: string;
}

/** A finished part, as CompleteMultipartUpload lists it. */
type DonePart = { PartNumber: number; ETag: string };

/**
 * Writes a segmented object's joined bytes to `dst`, copying on the server where it can so that the bytes
 * do not cross this process again: one CopyObject when a single piece holds them, else one UploadPartCopy
 * per piece when every piece but the last is big enough to be a part; otherwise (and on servers without
 * UploadPartCopy, s3rver) the bytes are read back and sent again.
 */
export async function assemble(b: S3Bucket, from: string, dst: string): Promise<void> {
  const { sdk, c } = await b.connect();
  const all = await pieces(b, from);
  if (all.length === 1 && all[0]!.size <= MAX_COPY) {
    await c.send(
      new sdk.CopyObjectCommand({ Bucket: b.name, Key: dst, CopySource: b.copySource(all[0]!.key), ...b.extra }),
    );
    return;
  }
  const copyable =
    all.length > 1 &&
    all.length <= MAX_PARTS &&
    all.every((p, i) => p.size <= MAX_COPY && (p.size >= MIN_CHUNK || i === all.length - 1));
  if (copyable && b.partCopy !== false && (await copyParts(b, from, all, dst))) return;
  await resend(b, from, dst);
}

/**
 * Opens a multipart upload of `dst` and records it in `record` before any part is sent, so that a process
 * killed mid-commit leaves a record that upload purging (or the next commit) aborts.
 */
async function openMultipart(b: S3Bucket, record: string, dst: string): Promise<string> {
  const { sdk, c } = await b.connect();
  // An earlier commit of this session that died mid-way left its upload open: abort it first.
  await abortRecorded(b, record);
  const uploadId = (await c.send(new sdk.CreateMultipartUploadCommand({ Bucket: b.name, Key: dst, ...b.extra })))
    .UploadId!;
  const rec: MultipartRecord = { key: dst, uploadId };
  await c.send(new sdk.PutObjectCommand({ Bucket: b.name, Key: record, Body: JSON.stringify(rec) }));
  return uploadId;
}

/** Completes a recorded multipart upload (the object appears at `dst` whole) and removes the record. */
async function completeMultipart(
  b: S3Bucket,
  record: string,
  dst: string,
  uploadId: string,
  parts: DonePart[],
): Promise<void> {
  const { sdk, c } = await b.connect();
  await c.send(
    new sdk.CompleteMultipartUploadCommand({
      Bucket: b.name,
      Key: dst,
      UploadId: uploadId,
      MultipartUpload: { Parts: parts },
    }),
  );
  await b.deleteKeys([record]);
}

/**
 * Joins pieces into `dst` with one UploadPartCopy each, a few at once. Returns false, having aborted its
 * upload, when the server turns out not to copy parts: found by the first commit and kept for the process.
 */
async function copyParts(b: S3Bucket, from: string, all: S3Object[], dst: string): Promise<boolean> {
  const { sdk, c } = await b.connect();
  const record = `${b.key(from)}${MULTIPART_SUFFIX}`;
  const uploadId = await openMultipart(b, record, dst);
  const done: DonePart[] = [];
  const copy = async (i: number): Promise<void> => {
    const out = await c.send(
      new sdk.UploadPartCopyCommand({
        Bucket: b.name,
        Key: dst,
        UploadId: uploadId,
        PartNumber: i + 1,
        CopySource: b.copySource(all[i]!.key),
      }),
    );
    const etag = out.CopyPartResult?.ETag;
    // A server that took the request for a plain UploadPart (of an empty body) would answer no CopyPartResult.
    if (!etag) throw Object.assign(new Error('UploadPartCopy answered without an ETag'), { name: 'NotImplemented' });
    done[i] = { PartNumber: i + 1, ETag: etag };
  };
  try {
    let next = 0;
    if (b.partCopy === undefined) {
      try {
        await copy(next++);
      } catch (e) {
        if (!isNotImplemented(e)) throw e;
        b.partCopy = false;
        await abortRecorded(b, record);
        return false;
      }
      b.partCopy = true;
    }
    let failed = false;
    const worker = async (): Promise<void> => {
      while (!failed && next < all.length) {
        try {
          await copy(next++);
        } catch (e) {
          failed = true;
          throw e;
        }
      }
    };
    // Every copy has settled before the upload is completed or aborted.
    const settled = await Promise.allSettled(Array.from({ length: COPY_CONCURRENCY }, worker));
    const bad = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (bad) throw bad.reason;
    await completeMultipart(b, record, dst, uploadId, done);
    return true;
  } catch (e) {
    // Parts of an unfinished multipart upload are billed until aborted.
    await abortRecorded(b, record);
    throw e;
  }
}

/**
 * Writes the joined bytes to `dst` by reading them back: one PutObject when they fit in one chunk, else a
 * multipart upload of chunk-sized parts (S3 wants every part but the last to be at least 5 MiB), with one
 * part in flight while the next is read.
 */
async function resend(b: S3Bucket, from: string, dst: string): Promise<void> {
  const { sdk, c } = await b.connect();
  const src = await joinedReader(b, from);
  let buf: Buffer[] = [];
  let size = 0;
  let uploadId: string | undefined;
  let sent = 0;
  let inflight: Promise<void> | undefined;
  const done: DonePart[] = [];
  const record = `${b.key(from)}${MULTIPART_SUFFIX}`;
  const sendPart = async (body: Buffer): Promise<void> => {
    if (inflight) await inflight;
    uploadId ??= await openMultipart(b, record, dst);
    const n = ++sent;
    inflight = c
      .send(
        new sdk.UploadPartCommand({
          Bucket: b.name,
          Key: dst,
          UploadId: uploadId,
          PartNumber: n,
          Body: body,
          ContentLength: body.length,
        }),
      )
      .then((out) => {
        done[n - 1] = { PartNumber: n, ETag: out.ETag! };
      });
    // Its failure is reported by the next sendPart or before completing; until then it is not unhandled.
    inflight.catch(() => undefined);
  };
  try {
    for await (const piece of src as AsyncIterable<Buffer>) {
      buf.push(piece);
      size += piece.length;
      while (size >= b.chunk) {
        const all = Buffer.concat(buf, size);
        await sendPart(all.subarray(0, b.chunk));
        const rest = all.subarray(b.chunk);
        buf = rest.length ? [Buffer.from(rest)] : [];
        size = rest.length;
      }
    }
    const last = Buffer.concat(buf, size);
    if (uploadId === undefined) {
      await c.send(
        new sdk.PutObjectCommand({ Bucket: b.name, Key: dst, Body: last, ContentLength: last.length, ...b.extra }),
      );
      return;
    }
    if (last.length > 0) await sendPart(last);
    await inflight;
    await completeMultipart(b, record, dst, uploadId, done);
  } catch (e) {
    await inflight?.catch(() => undefined);
    // Parts of an unfinished multipart upload are billed until aborted; some servers (s3rver) cannot.
    if (uploadId !== undefined) await abortRecorded(b, record);
    src.destroy();
    throw e;
  }
}

/** Aborts the multipart upload a record names, then removes the record; a server without Abort (s3rver) is tolerated. */
export async function abortRecorded(b: S3Bucket, recordKey: string): Promise<void> {
  const { sdk, c } = await b.connect();
  const bytes = await b.getObject(recordKey);
  if (!bytes) return;
  let rec: MultipartRecord;
  try {
    rec = JSON.parse(bytes.toString('utf8')) as MultipartRecord;
  } catch {
    // An unreadable record names no upload to abort: it is only removed.
    await b.deleteKeys([recordKey]);
    return;
  }
  // NoSuchUpload (already completed or aborted) and MethodNotAllowed/NotImplemented all leave nothing to do.
  await c
    .send(new sdk.AbortMultipartUploadCommand({ Bucket: b.name, Key: rec.key, UploadId: rec.uploadId }))
    .catch(() => undefined);
  await b.deleteKeys([recordKey]);
}

/**
 * Aborts multipart uploads under the bucket's root begun before `before`, by listing them: this also catches an
 * upload whose process died between creating it and recording it. Servers without ListMultipartUploads
 * (s3rver) answer an error, and then only recorded uploads are aborted (by upload purging).
 */
export async function abortStaleUploads(b: S3Bucket, before: Date): Promise<string[]> {
  const { sdk, c } = await b.connect();
  const aborted: string[] = [];
  let keyMarker: string | undefined;
  let idMarker: string | undefined;
  for (let pages = 0; pages < 10_000; pages++) {
    let out: ListMultipartUploadsCommandOutput;
    try {
      out = await c.send(
        new sdk.ListMultipartUploadsCommand({
          Bucket: b.name,
          Prefix: b.prefix,
          KeyMarker: keyMarker,
          UploadIdMarker: idMarker,
        }),
      );
    } catch (e) {
      if (pages === 0 && isNotImplemented(e)) return aborted;
      throw e;
    }
    for (const u of out.Uploads ?? []) {
      if (!u.Key || !u.UploadId || !u.Initiated || u.Initiated >= before) continue;
      await c
        .send(new sdk.AbortMultipartUploadCommand({ Bucket: b.name, Key: u.Key, UploadId: u.UploadId }))
        .catch(() => undefined);
      aborted.push(u.Key.slice(b.prefix.length));
    }
    if (!out.IsTruncated) break;
    keyMarker = out.NextKeyMarker;
    idMarker = out.NextUploadIdMarker;
  }
  return aborted;
}
