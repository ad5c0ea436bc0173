import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isDigest, type Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { RepositoryName } from '../oci/name.js';
import type { RegistryContext } from './context.js';
import { blobDataPath } from '../storage/layout.js';
import { etagOf, ifNoneMatchHits } from './conditional.js';
import { claimForPush } from './gc-claim.js';
import { emitForRequest, eventURL, type EventDraft } from './events.js';

/**
 * Parses a Range header against a size: the one byte range to send, or null to send the whole body.
 * RFC 9110 §14.2 lets a server ignore Range, and Sluice does (as Distribution does for what Go's
 * ServeContent cannot serve) when it is malformed, names another unit or asks for several ranges: the
 * whole body with 200 is a correct answer to those. Only a single well-formed range that lies wholly past
 * the end throws RANGE_INVALID (416).
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null {
  if (!header) return null;
  const m = /^bytes=[ \t]*(\d*)-(\d*)[ \t]*$/i.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    // A suffix range: the last N bytes. The last 0 bytes are nothing, which no range can be.
    const n = Number(m[2]);
    if (n === 0) throw new OciError('RANGE_INVALID', `range ${header} is not satisfiable for ${size} bytes`);
    if (size === 0) return null;
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const last = m[2] === '' ? Infinity : Number(m[2]);
  // last < first is not a valid range-spec (RFC 9110 §14.1.1), so the header is ignored, not refused.
  if (last < start) return null;
  if (start >= size) throw new OciError('RANGE_INVALID', `range ${header} is not satisfiable for ${size} bytes`);
  return { start, end: Math.min(last, size - 1) };
}

/** Validates a digest from a URL, answering DIGEST_INVALID. */
export function requireDigest(text: string): Digest {
  if (!isDigest(text)) throw new OciError('DIGEST_INVALID', `invalid digest "${text.slice(0, 200)}"`);
  return text;
}

/** A blob's push, pull or mount as Distribution describes it: its media type is unknown, so octet-stream. */
export function blobEvent(
  req: FastifyRequest,
  action: 'push' | 'pull' | 'mount',
  name: RepositoryName,
  digest: Digest,
  size: number,
  from?: string,
): EventDraft {
  const target = { mediaType: 'application/octet-stream', size, digest, length: size, repository: name };
  return {
    type: action,
    action,
    target: { ...target, ...(from ? { fromRepository: from } : {}), url: eventURL(req, name, 'blobs', digest) },
  };
}

/** GET and HEAD of a blob, with single byte ranges. */
export async function getBlob(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  name: RepositoryName,
  digestText: string,
): Promise<void> {
  const digest = requireDigest(digestText);
  await ctx.authorize(req, { repository: name, actions: ['pull'], reference: digest });
  // A HEAD is how a pusher asks whether to upload: a yes must hold until its manifest names the blob. Only a
  // caller who may push claims, or anyone who may pull could keep garbage alive.
  if (req.method === 'HEAD' && (!ctx.mayPush || (await ctx.mayPush(req, name)))) await claimForPush(ctx, [digest]);
  const size = await ctx.repo(name).blobSize(digest);
  if (size === null)
    throw new OciError('BLOB_UNKNOWN', `blob ${digest} is not known to repository ${name}`, { digest });
  // Distribution sends a pull for a blob's GET and HEAD alike.
  if (ctx.events?.journalsPulls) await emitForRequest(ctx, req, [blobEvent(req, 'pull', name, digest, size)]);
  if (await redirectBlob(ctx, req, reply, digest)) return;
  // The driver writes straight into the socket (reused buffers, no per-chunk allocation).
  await sendBlob(ctx, req, reply, digest, size, (out, start, length) => ctx.blobs.sendTo(digest, out, start, length));
}

/** How long a redirect's presigned URL is valid: what Distribution's s3 driver gives. */
const REDIRECT_SECONDS = 20 * 60;

/**
 * With `storage.redirect.disable: false`, answers a blob GET with 307 to a short-lived URL of the storage
 * itself (S3 presigned), so the bytes do not pass through this process. HEAD is answered here: it carries
 * no body, and a 304 is cheaper than a redirect. False when the blob is to be served here.
 */
async function redirectBlob(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  digest: Digest,
): Promise<boolean> {
  if (req.method !== 'GET' || ctx.config.storage.redirect?.disable !== false || !ctx.driver.redirectURL) return false;
  if (ifNoneMatchHits(req, digest)) return false;
  const url = await ctx.driver.redirectURL(blobDataPath(digest), REDIRECT_SECONDS);
  if (!url) return false;
  reply.code(307).header('location', url).header('docker-content-digest', digest).header('content-length', '0').send();
  return true;
}

/**
 * Answers a blob GET or HEAD: digest, ETag and If-None-Match (304), a single Range (206, or 416 when
 * unsatisfiable), then `write` puts the bytes into the socket, whether from storage or from a cache
 * fill still arriving. Fastify's onResponse hooks (log line, metrics) still run when the response ends.
 */
export async function sendBlob(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  digest: Digest,
  size: number,
  write: (out: ServerResponse, start: number, length: number) => Promise<void>,
): Promise<void> {
  reply.header('docker-content-digest', digest);
  reply.header('etag', etagOf(digest));
  reply.header('cache-control', 'max-age=31536000');
  // RFC 9110 §13.2.2: a matching If-None-Match answers 304, and Range is then not looked at.
  if (ifNoneMatchHits(req, digest)) {
    reply.code(304).send();
    return;
  }
  reply.header('accept-ranges', 'bytes');
  reply.header('content-type', 'application/octet-stream');
  let range: { start: number; end: number } | null;
  try {
    range = parseRange(req.headers.range, size);
  } catch (e) {
    reply.header('content-range', `bytes */${size}`);
    throw e;
  }
  if (req.method === 'HEAD') {
    reply.header('content-length', String(size));
    reply.code(200).send();
    return;
  }
  const start = range ? range.start : 0;
  const length = range ? range.end - range.start + 1 : size;
  if (range) {
    reply.code(206);
    reply.header('content-range', `bytes ${range.start}-${range.end}/${size}`);
  } else {
    reply.code(200);
  }
  reply.header('content-length', String(length));
  ctx.metrics.bytesOut.inc({ route: 'blob' }, length);
  if (length === 0) {
    await reply.send('');
    return;
  }
  reply.hijack();
  const res = reply.raw;
  res.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
  try {
    await write(res, start, length);
    res.end();
  } catch (e) {
    // Headers are gone already: all that is left is to cut the connection so the client sees a short body.
    req.log.info({ digest, err: (e as Error).message }, 'blob transfer ended early');
    res.destroy();
  }
}

/** DELETE of a blob: unlinks it from the repository when deletion is enabled. */
export async function deleteBlob(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  name: RepositoryName,
  digestText: string,
): Promise<void> {
  const digest = requireDigest(digestText);
  await ctx.authorize(req, { repository: name, actions: ['delete'], reference: digest });
  requireWritable(ctx);
  if (!ctx.deleteEnabled)
    throw new OciError('UNSUPPORTED', 'deletion is disabled on this registry (storage.delete.enabled)');
  if (!(await ctx.repo(name).unlinkBlob(digest)))
    throw new OciError('BLOB_UNKNOWN', `blob ${digest} is not known to repository ${name}`, { digest });
  await emitForRequest(ctx, req, [{ type: 'delete', action: 'delete', target: { digest, repository: name } }]);
  reply.code(202).header('content-length', '0').send();
}

/** Refuses writes on a read-only registry. */
export function requireWritable(ctx: RegistryContext): void {
  if (ctx.readOnly)
    throw new OciError('UNSUPPORTED', 'this registry is read-only (storage.maintenance.readonly.enabled)');
}
