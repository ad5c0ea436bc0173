import type { Readable } from 'node:stream';

/** How much of a manifest a caller will read; signature discovery sets it so a huge manifest is refused before it is held. */
export interface ReadLimit {
  maxBytes?: number;
}

/** Thrown when something is larger than the caller's bound; the message says what, how large and the bound. */
export class TooLargeError extends Error {}

/** Refuses up front when a declared size (Content-Length, a file's size, a descriptor) is over the bound. */
export function refuseDeclared(what: string, size: number | undefined, limit: ReadLimit | undefined, by: string): void {
  const max = limit?.maxBytes;
  if (max !== undefined && size !== undefined && size > max)
    throw new TooLargeError(`${what} is ${size} bytes (${by}), over the ${max}-byte bound; not read`);
}

/**
 * Reads a stream whole, or, with a bound, stops and destroys it as soon as more than `maxBytes` arrived,
 * so memory never holds more than the bound (plus one chunk) whatever the other side sends.
 */
export async function readBounded(stream: Readable, what: string, limit?: ReadLimit): Promise<Buffer> {
  const max = limit?.maxBytes ?? Infinity;
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of stream) {
      const b = chunk as Buffer;
      total += b.length;
      if (total > max)
        throw new TooLargeError(`${what} is longer than the ${max}-byte bound; stopped reading after ${total} bytes`);
      chunks.push(b);
    }
  } finally {
    release(stream);
  }
  return Buffer.concat(chunks, total);
}

/**
 * Reads a body whole within `limit`: refused by its declared length (a Content-Length header's text)
 * before a byte is read, and cut as soon as more than the bound arrived.
 */
export async function readDeclared(
  stream: Readable,
  declared: string | undefined,
  what: string,
  limit: ReadLimit,
): Promise<Buffer> {
  try {
    refuseDeclared(what, declared === undefined ? undefined : Number(declared), limit, 'Content-Length');
  } catch (e) {
    release(stream);
    throw e;
  }
  return readBounded(stream, what, limit);
}

const ignore = (): void => undefined;

/**
 * Drops a body that will not be read (further). undici's body reports its own destruction as an error
 * event (`RequestAbortedError`) when it was not read to the end, and with no listener that event ends the
 * process: the listener stays, since the event may come a tick later.
 */
export function release(stream: Readable): void {
  stream.on('error', ignore);
  stream.destroy();
}
