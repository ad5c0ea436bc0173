import { Readable } from 'node:stream';

/**
 * Cuts a stream into consecutive parts of `chunk` bytes (the last may be shorter), each its own
 * stream, so a chunked upload sends one PATCH per part without holding more than a read's worth.
 * Each part must be read to its end before the next is taken.
 */
export async function* sliceStream(
  body: Readable,
  chunk: number,
  total: number,
): AsyncGenerator<{ size: number; stream: Readable }> {
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let leftover: Buffer | undefined;
  let offset = 0;
  while (offset < total) {
    const size = Math.min(chunk, total - offset);
    async function* part(): AsyncGenerator<Buffer> {
      let remaining = size;
      while (remaining > 0) {
        let buf = leftover;
        leftover = undefined;
        if (!buf) {
          const r = await it.next();
          if (r.done) throw new Error(`stream ended ${remaining} bytes short of a ${size}-byte part`);
          buf = r.value;
        }
        if (buf.length > remaining) {
          leftover = buf.subarray(remaining);
          buf = buf.subarray(0, remaining);
        }
        remaining -= buf.length;
        yield buf;
      }
    }
    yield { size, stream: Readable.from(part(), { objectMode: false }) };
    offset += size;
  }
  if (leftover && leftover.length > 0) throw new Error('stream is longer than its declared size');
}
