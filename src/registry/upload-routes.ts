import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { OciError } from '../oci/errors.js';
import type { RepositoryName } from '../oci/name.js';
import { isRepositoryName, quoteName } from '../oci/name.js';
import { isUploadId } from '../storage/uploads.js';
import { blobEvent, requireDigest, requireWritable } from './blob-routes.js';
import { emitForRequest } from './events.js';
import type { RegistryContext } from './context.js';
import { allowAll } from './access.js';
import { refuseCodings } from './body.js';
import { claimForPush } from './gc-claim.js';

function uploadLocation(name: RepositoryName, id: string): string {
  return `/v2/${name}/blobs/uploads/${id}`;
}

/** The Range header of an upload status: `0-<last byte>` (Distribution writes `0-0` when empty). */
function rangeHeader(size: number): string {
  return `0-${size > 0 ? size - 1 : 0}`;
}

function sendUploadStatus(reply: FastifyReply, name: RepositoryName, id: string, size: number, code: number): void {
  reply
    .code(code)
    .header('location', uploadLocation(name, id))
    .header('range', rangeHeader(size))
    .header('docker-upload-uuid', id)
    .header('oci-chunk-min-length', '0')
    .header('content-length', '0')
    .send();
}

function sendBlobCreated(reply: FastifyReply, name: RepositoryName, digest: string): void {
  reply
    .code(201)
    .header('location', `/v2/${name}/blobs/${digest}`)
    .header('docker-content-digest', digest)
    .header('content-length', '0')
    .send();
}

function contentLength(req: FastifyRequest): number | undefined {
  const v = req.headers['content-length'];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new OciError('SIZE_INVALID', `invalid Content-Length "${v}"`);
  return n;
}

/** Parses an upload Content-Range: `<start>-<end>` as the spec writes it (`bytes=` tolerated). */
export function parseContentRange(
  header: string | undefined,
  length: number | undefined,
): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const m = /^(?:bytes[= ])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!m) throw new OciError('RANGE_INVALID', `invalid Content-Range "${header}"`);
  const start = Number(m[1]);
  const end = Number(m[2]);
  // Past 2^53 two different offsets read as one number: such a chunk could land on the wrong bytes.
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end))
    throw new OciError('RANGE_INVALID', `Content-Range ${quoteName(header)} is past the largest offset`);
  if (end < start) throw new OciError('RANGE_INVALID', `Content-Range ${header} ends before it starts`);
  if (length !== undefined && end - start + 1 !== length) {
    throw new OciError('RANGE_INVALID', `Content-Range ${header} does not match Content-Length ${length}`);
  }
  return { start, end };
}

function body(req: FastifyRequest): Readable {
  return req.raw;
}

/**
 * Whether the caller may pull the mount's source repository. A refusal is not the request's failure: the
 * spec lets a registry that cannot mount answer with an ordinary upload session (202), and clients such as
 * `ctr images push` give up on a 403 instead of uploading. The refusal is still written to the audit log.
 */
async function mayMountFrom(ctx: RegistryContext, req: FastifyRequest, from: RepositoryName): Promise<boolean> {
  // This request's audit line should describe the upload it became, not the mount check.
  const { auditAccess, authChallenge } = req;
  try {
    await ctx.authorize(req, { repository: from, actions: ['pull'] });
    return true;
  } catch (e) {
    if (e instanceof OciError) return false;
    throw e;
  } finally {
    req.auditAccess = auditAccess;
    req.authChallenge = authChallenge;
  }
}

/**
 * Whether `?mount=` without `from` may link any blob stored anywhere in the registry (OCI 1.1). Under
 * access control that would let anyone who knows a digest take a blob from a repository they cannot read,
 * so `auto` (the default) allows it only when there is none; storage.automount overrides.
 */
function automountAllowed(ctx: RegistryContext): boolean {
  const setting = ctx.config.storage.automount ?? 'auto';
  return setting === 'auto' ? ctx.authorize === allowAll : setting;
}

/** POST: start an upload, upload monolithically (`?digest=`), or mount from another repository. */
export async function startUpload(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  name: RepositoryName,
): Promise<void> {
  const q = req.query as Record<string, string | undefined>;
  const mount = q.mount;
  const from = q.from;
  await ctx.authorize(req, { repository: name, actions: ['push', 'pull'] });
  requireWritable(ctx);
  const repo = ctx.repo(name);

  if (mount !== undefined) {
    const digest = requireDigest(mount);
    await claimForPush(ctx, [digest]);
    let source: number | null = null;
    if (from !== undefined) {
      if (isRepositoryName(from) && (await mayMountFrom(ctx, req, from)))
        source = await ctx.repo(from).blobSize(digest);
    } else if (automountAllowed(ctx)) {
      source = await ctx.blobs.size(digest);
    }
    if (source !== null) {
      await repo.linkBlob(digest);
      ctx.catalog.invalidate();
      await emitForRequest(ctx, req, [blobEvent(req, 'mount', name, digest, source, from)]);
      sendBlobCreated(reply, name, digest);
      return;
    }
    // The spec's fallback when a mount is not possible: an ordinary upload session.
  }

  const digestParam = q.digest;
  if (digestParam !== undefined && mount === undefined) {
    const digest = requireDigest(digestParam);
    refuseCodings(req, 'BLOB_UPLOAD_INVALID');
    const length = contentLength(req);
    const started = Date.now();
    const id = await ctx.uploads.start(name);
    let blobSize = 0;
    try {
      const size = await ctx.uploads.append(name, id, body(req), undefined, length);
      ctx.metrics.bytesIn.inc({ route: 'upload' }, size);
      await claimForPush(ctx, [digest]);
      blobSize = await ctx.uploads.finish(name, id, digest);
    } catch (e) {
      await ctx.uploads.cancel(name, id);
      throw e;
    }
    await repo.linkBlob(digest);
    ctx.catalog.invalidate();
    ctx.metrics.uploadSeconds.observe((Date.now() - started) / 1000);
    await emitForRequest(ctx, req, [blobEvent(req, 'push', name, digest, blobSize)]);
    sendBlobCreated(reply, name, digest);
    return;
  }

  req.raw.resume();
  const id = await ctx.uploads.start(name);
  sendUploadStatus(reply, name, id, 0, 202);
}

async function requireSession(ctx: RegistryContext, name: RepositoryName, id: string): Promise<number> {
  const size = isUploadId(id) ? await ctx.uploads.size(name, id) : null;
  if (size === null) throw new OciError('BLOB_UPLOAD_UNKNOWN', `upload ${id.slice(0, 100)} is not known`);
  return size;
}

/** GET of an upload session: how many bytes it holds. */
export async function uploadStatus(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  name: RepositoryName,
  id: string,
): Promise<void> {
  await ctx.authorize(req, { repository: name, actions: ['push'] });
  const size = await requireSession(ctx, name, id);
  sendUploadStatus(reply, name, id, size, 204);
}

/** PATCH: append a chunk, streamed to storage. */
export async function patchUpload(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  name: RepositoryName,
  id: string,
): Promise<void> {
  await ctx.authorize(req, { repository: name, actions: ['push'] });
  requireWritable(ctx);
  await requireSession(ctx, name, id);
  refuseCodings(req, 'BLOB_UPLOAD_INVALID');
  const length = contentLength(req);
  const range = parseContentRange(req.headers['content-range'], length);
  const before = (await ctx.uploads.size(name, id)) ?? 0;
  const size = await ctx.uploads.append(
    name,
    id,
    body(req),
    range?.start,
    length ?? (range ? range.end - range.start + 1 : undefined),
  );
  ctx.metrics.bytesIn.inc({ route: 'upload' }, size - before);
  sendUploadStatus(reply, name, id, size, 202);
}

/** PUT `?digest=`: the optional last chunk, then verification and the blob made visible. */
export async function finishUpload(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  name: RepositoryName,
  id: string,
): Promise<void> {
  await ctx.authorize(req, { repository: name, actions: ['push'] });
  requireWritable(ctx);
  const q = req.query as Record<string, string | undefined>;
  if (q.digest === undefined) throw new OciError('DIGEST_INVALID', 'PUT of an upload needs ?digest=');
  const digest = requireDigest(q.digest);
  const before = await requireSession(ctx, name, id);
  refuseCodings(req, 'BLOB_UPLOAD_INVALID');
  const length = contentLength(req);
  const range = parseContentRange(req.headers['content-range'], length);
  if (length !== 0 || range) {
    const size = await ctx.uploads.append(name, id, body(req), range?.start, length);
    ctx.metrics.bytesIn.inc({ route: 'upload' }, size - before);
  } else {
    req.raw.resume();
  }
  const started = await ctx.uploads.startedAt(name, id);
  await claimForPush(ctx, [digest]);
  const blobSize = await ctx.uploads.finish(name, id, digest);
  await ctx.repo(name).linkBlob(digest);
  ctx.catalog.invalidate();
  if (started) ctx.metrics.uploadSeconds.observe(Math.max(0, Date.now() - started.getTime()) / 1000);
  await emitForRequest(ctx, req, [blobEvent(req, 'push', name, digest, blobSize)]);
  sendBlobCreated(reply, name, digest);
}

/** DELETE of an upload session: cancel it. */
export async function cancelUpload(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  name: RepositoryName,
  id: string,
): Promise<void> {
  await ctx.authorize(req, { repository: name, actions: ['push'] });
  requireWritable(ctx);
  await requireSession(ctx, name, id);
  await ctx.uploads.cancel(name, id);
  reply.code(204).header('content-length', '0').send();
}
