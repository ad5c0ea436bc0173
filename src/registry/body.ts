import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { OciError, type ErrorCode } from '../oci/errors.js';

/** Reads a small request body whole, refusing more than `limit` bytes before buffering them. */
export async function readSmallBody(
  stream: Readable,
  limit: number,
  declared: number | undefined,
  code: ErrorCode,
  what = 'body',
): Promise<Buffer> {
  if (declared !== undefined && declared > limit) {
    stream.resume();
    throw new OciError(code, `${what} of ${declared} bytes exceeds the limit of ${limit} bytes`, undefined, 413);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      // Discard the rest without buffering it; the error reply closes the connection.
      stream.resume();
      throw new OciError(code, `${what} exceeds the limit of ${limit} bytes`, undefined, 413);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

/** The codings a header lists, lower-cased, without parameters (`gzip;q=1, chunked` → gzip, chunked). */
function codings(value: string | string[] | undefined): string[] {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return text
    .split(',')
    .map((c) => c.split(';')[0]!.trim().toLowerCase())
    .filter(Boolean);
}

/**
 * Refuses a request body Sluice would otherwise store in a coded form under a digest of the coded bytes.
 * Transfer codings other than chunked (`Transfer-Encoding: gzip, chunked`): 400 with `code`, the status
 * Node's parser already gives a body framed by a lone `Transfer-Encoding: gzip`, so any coding but chunked
 * meets the same answer. Content codings other than identity: 415, as RFC 9110 §8.4 suggests; blobs and
 * manifests are addressed by their exact bytes, so the registry never decodes them.
 * The body is drained and discarded, so the connection stays usable.
 */
export function refuseCodings(req: FastifyRequest, code: ErrorCode): void {
  const transfer = codings(req.headers['transfer-encoding']).filter((c) => c !== 'chunked');
  if (transfer.length > 0) {
    req.raw.resume();
    throw new OciError(
      code,
      `Transfer-Encoding ${transfer.join(', ')} is not supported: send the body as it is (chunked framing only)`,
      undefined,
      400,
    );
  }
  const content = codings(req.headers['content-encoding']).filter((c) => c !== 'identity');
  if (content.length > 0) {
    req.raw.resume();
    throw new OciError(
      'UNSUPPORTED',
      `Content-Encoding ${content.join(', ')} is not supported: send the exact bytes the digest names, without a content coding`,
      undefined,
      415,
    );
  }
}
