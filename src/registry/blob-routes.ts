import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isDigest, type Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { RepositoryName } from '../oci/name.js';
import type { RegistryContext } from './context.js';

/** Parses a single `bytes=start-end` range against a size; null when the header is absent. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) throw new OciError('RANGE_INVALID', `unsupported Range "${header}"`);
  let start: number;
  let end: number;
  if (m[1] === '') {
    // A suffix range: the last N bytes.
    const n = Number(m[2]);
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) throw new OciError('RANGE_INVALID', `range ${header} is not satisfiable for ${size} bytes`);
  return { start, end };
}

/** Validates a digest from a URL, answering DIGEST_INVALID. */
export function requireDigest(text: string): Digest {
  if (!isDigest(text)) throw new OciError('DIGEST_INVALID', `invalid digest "${text.slice(0, 200)}"`);
  return text;
}

/** GET and HEAD of a blob, with single byte ranges. */
export async function getBlob(ctx: RegistryContext, req: FastifyRequest, reply: FastifyReply, name: RepositoryName, digestText: string): Promise<void> {
  const digest = requireDigest(digestText);
  await ctx.authorize(req, { repository: name, actions: ['pull'], reference: digest });
  const size = await ctx.repo(name).blobSize(digest);
  if (size === null) throw new OciError('BLOB_UNKNOWN', `blob ${digest} is not known to repository ${name}`, { digest });
  reply.header('docker-content-digest', digest);
  reply.header('etag', `"${digest}"`);
  reply.header('accept-ranges', 'bytes');
  reply.header('cache-control', 'max-age=31536000');
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
  // The body is written by the storage driver straight into the socket (reused buffers, no per-chunk
  // allocation); Fastify's onResponse hooks (log line, metrics) still run when the response finishes.
  reply.hijack();
  const res = reply.raw;
  res.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
  try {
    await ctx.blobs.sendTo(digest, res, start, length);
    res.end();
  } catch (e) {
    // Headers are gone already: all that is left is to cut the connection so the client sees a short body.
    req.log.info({ digest, err: (e as Error).message }, 'blob transfer ended early');
    res.destroy();
  }
}

/** DELETE of a blob: unlinks it from the repository when deletion is enabled. */
export async function deleteBlob(ctx: RegistryContext, req: FastifyRequest, reply: FastifyReply, name: RepositoryName, digestText: string): Promise<void> {
  const digest = requireDigest(digestText);
  await ctx.authorize(req, { repository: name, actions: ['delete'], reference: digest });
  requireWritable(ctx);
  if (!ctx.deleteEnabled) throw new OciError('UNSUPPORTED', 'deletion is disabled on this registry (storage.delete.enabled)');
  if (!(await ctx.repo(name).unlinkBlob(digest))) throw new OciError('BLOB_UNKNOWN', `blob ${digest} is not known to repository ${name}`, { digest });
  reply.code(202).header('content-length', '0').send();
}

/** Refuses writes on a read-only registry. */
export function requireWritable(ctx: RegistryContext): void {
  if (ctx.readOnly) throw new OciError('UNSUPPORTED', 'this registry is read-only (storage.maintenance.readonly.enabled)');
}
