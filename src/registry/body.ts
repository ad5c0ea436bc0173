import type { Readable } from 'node:stream';
import { OciError, type ErrorCode } from '../oci/errors.js';

/** Reads a small request body whole, refusing more than `limit` bytes before buffering them. */
export async function readSmallBody(stream: Readable, limit: number, declared: number | undefined, code: ErrorCode, what = 'body'): Promise<Buffer> {
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
