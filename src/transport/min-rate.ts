import type { Readable } from 'node:stream';

/** The slowest an upstream transfer may go: `bytesPerSecond` on average over every `windowMs`; 0 never gives up. */
export interface MinRate {
  bytesPerSecond: number;
  windowMs: number;
}

/** The error a transfer is destroyed with when it went slower than its minimum rate. */
export class TooSlowError extends Error {
  override readonly name = 'TooSlowError';
}

/**
 * Watches a body as its reader counts what arrives: when fewer than `bytesPerSecond × windowMs` bytes came
 * in one window, the body is destroyed with a TooSlowError, so the reader's loop ends with it. Why: undici's
 * body timeout is per chunk, and an upstream that drips a byte now and then would hold a transfer (and
 * everyone waiting on it) for good. Returns the counter to call with each chunk's length.
 */
export function watchRate(body: Readable, rate: MinRate, what: string): (n: number) => void {
  if (!(rate.bytesPerSecond > 0) || !(rate.windowMs > 0)) return () => undefined;
  const need = (rate.bytesPerSecond * rate.windowMs) / 1000;
  let seen = 0;
  const timer = setInterval(() => {
    if (body.destroyed || body.readableEnded) return clearInterval(timer);
    if (seen < need) {
      clearInterval(timer);
      const secs = rate.windowMs / 1000;
      body.destroy(
        new TooSlowError(
          `${what}: ${seen} bytes arrived in ${secs}s, under the minimum of ${rate.bytesPerSecond} bytes/s`,
        ),
      );
      return;
    }
    seen = 0;
  }, rate.windowMs);
  // A watch never keeps the process alive, and ends with the body whichever way it ends.
  timer.unref();
  body.once('close', () => clearInterval(timer));
  return (n) => {
    seen += n;
  };
}
