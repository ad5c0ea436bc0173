import type { FastifyReply } from 'fastify';
import { OciError } from '../oci/errors.js';
import { UploadError } from '../storage/uploads.js';
import { isStorageFull } from '../storage/driver.js';
import { InvalidNameError, type NameKind } from '../storage/errors.js';

const INVALID_NAME_CODE = {
  'repository name': 'NAME_INVALID',
  tag: 'TAG_INVALID',
  digest: 'DIGEST_INVALID',
  'upload id': 'BLOB_UPLOAD_UNKNOWN',
} as const satisfies Record<NameKind, string>;

/** Maps an upload failure to the OCI error the spec prescribes. */
export function uploadErrorToOci(e: UploadError): OciError {
  switch (e.reason) {
    case 'unknown':
      return new OciError('BLOB_UPLOAD_UNKNOWN', e.message);
    case 'range':
      return new OciError('RANGE_INVALID', e.message);
    case 'digest':
      return new OciError('DIGEST_INVALID', e.message);
    case 'size':
      return new OciError('SIZE_INVALID', e.message);
    case 'too-large':
      return new OciError('SIZE_INVALID', e.message, undefined, 413);
    case 'aborted':
      return new OciError('BLOB_UPLOAD_INVALID', e.message);
  }
}

/** Turns anything thrown by a route into an OciError; unexpected errors become UNKNOWN (500). */
export function toOciError(e: unknown): OciError {
  if (e instanceof OciError) return e;
  if (e instanceof UploadError) return uploadErrorToOci(e);
  if (e instanceof InvalidNameError) return new OciError(INVALID_NAME_CODE[e.kind], e.message);
  // 507 Insufficient Storage: the request was fine and may succeed once space is freed.
  if (isStorageFull(e)) return new OciError('UNKNOWN', "no space left on the registry's storage", undefined, 507);
  return new OciError('UNKNOWN', 'internal error');
}

/** Sends an OCI error body (none for HEAD, as HTTP requires). */
export function sendError(reply: FastifyReply, err: OciError, head: boolean): FastifyReply {
  reply.code(err.status);
  if (err.status === 413) reply.header('connection', 'close');
  if (head) return reply.header('content-type', 'application/json').send();
  return reply.header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(err.toJSON()));
}
