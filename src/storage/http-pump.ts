import { isIP, connect as netConnect, type Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

/**
 * The most a transfer reads at once. One buffer of this size per transfer, reused for every read: Node's
 * usual socket reads allocate a fresh 64 KiB buffer each, and at S3 rates those allocations set off a full
 * garbage collection every few MiB (measured: about half of a node's CPU while it served a blob from S3).
 */
const BUFFER_MAX = 1 << 20;
/**
 * Where reads land while `out` still holds the main buffer: a TLS socket delivers what it had decrypted
 * after a pause (records of at most 16 KiB), and those bytes are copied out at once.
 */
const SCRATCH_SIZE = 64 * 1024;
/** A response head larger than this is not S3's. */
const HEAD_MAX = 64 * 1024;
/** How long the server may send nothing while the pump waits on it (not on the receiver) before the transfer fails. */
const STALL_MS = 60_000;
/** How much of an error response's body is kept for the message. */
const ERROR_BODY_MAX = 8 * 1024;

/** A non-2xx answer; `body` is the start of what the server said (S3: an XML error). */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`GET answered ${status}: ${(/<Code>([^<]*)<\/Code>/.exec(body)?.[1] ?? body).slice(0, 200)}`);
  }
}

/** A 2xx answer not framed by Content-Length (chunked, or till close): nothing was written, the caller may read it another way. */
export class UnframedResponse extends Error {}

const NOTHING_WRITTEN = Symbol('nothing written');

/** Whether a transfer failed before any byte reached the receiver, so that it can be tried another way. */
export function nothingWritten(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[NOTHING_WRITTEN] === true;
}

interface Head {
  status: number;
  headers: Map<string, string>;
}

function parseHead(text: string): Head {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!m) throw new Error(`not an HTTP response: ${(lines[0] ?? '').slice(0, 100)}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return { status: Number(m[1]), headers };
}

/** A response's Content-Length when it is the response's only framing, else undefined. */
function framedLength(h: Head): number | undefined {
  const cl = h.headers.get('content-length');
  if (h.headers.has('transfer-encoding') || cl === undefined || !/^\d+$/.test(cl)) return undefined;
  return Number(cl);
}

function ignoreLateError(): void {}

/** A GET to send as it is: the URL and every header (those S3 signed among them). */
export interface GetRequest {
  url: URL;
  headers: Record<string, string>;
}

/**
 * Sends `req` over a connection of its own (`Connection: close`) and writes the body, which must be `length`
 * bytes, into `out` through one reused buffer: a read lands in it only after `out` has taken the bytes read
 * before (the socket is paused until then; what TLS still delivers after the pause lands in a small scratch
 * buffer and is copied), so memory is one buffer per transfer and nothing is left for the garbage collector. `rangeOffset` says the request carries a Range from there: the answer must then be 206,
 * or 200 at offset 0. Rejects with HttpStatusError for a non-2xx answer and UnframedResponse for a body of
 * unknown length, in both cases before writing anything.
 */
export function pumpGet(
  req: GetRequest,
  out: Writable,
  length: number,
  rangeOffset?: number,
  stallMs = STALL_MS,
): Promise<void> {
  const url = req.url;
  return new Promise<void>((resolve, reject) => {
    const buffer = Buffer.allocUnsafe(Math.max(1, Math.min(BUFFER_MAX, length)));
    let head: Head | undefined;
    let headBytes: Buffer[] = [];
    let headSize = 0;
    let errorBody = '';
    let errorLeft = 0;
    /** Body bytes taken from the socket, and handed to `out`. */
    let received = 0;
    let sent = 0;
    /** Copies of body bytes read while `out` still held the buffer. */
    const held: Buffer[] = [];
    let settled = false;
    /** The socket is paused because `out` has not taken everything written to it. */
    let waiting = false;
    /** The transfer's buffer that a write still pending in `out` reads from: no read may land in it meanwhile. */
    let lent: Buffer | undefined;
    let scratch: Buffer | undefined;
    /** Where the next read lands (Node asks after every read): never the buffer `out` still holds. */
    const nextBuffer = (): Buffer => {
      if (lent !== buffer) return buffer;
      scratch ??= Buffer.allocUnsafe(SCRATCH_SIZE);
      return scratch;
    };

    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      if (err && sent === 0) Object.assign(err, { [NOTHING_WRITTEN]: true });
      out.off('close', onOutClose);
      out.off('error', onOutError);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    const onOutClose = (): void => finish(new Error('the receiver closed before the transfer ended'));
    const onOutError = (e: Error): void => finish(e);

    const afterWrite = (err?: Error | null): void => {
      if (err) {
        finish(err);
        return;
      }
      // A write that went out at once calls back a turn later, maybe while a later one still waits in `out`.
      if (!waiting || out.writableLength > 0) return;
      waiting = false;
      lent = undefined;
      while (held.length > 0 && !waiting && !settled) write(held.shift()!);
      if (waiting || settled) return;
      if (sent === length) finish();
      else socket.resume();
    };
    /** Hands body bytes (in `from`, a transfer buffer, unless a copy) to `out`; false when `out` still holds them. */
    const write = (bytes: Buffer, from?: Buffer): boolean => {
      sent += bytes.length;
      out.write(bytes, afterWrite);
      // Nothing left in `out` means the socket under it took the bytes already; else wait for its callback.
      if (out.writableLength > 0) {
        waiting = true;
        if (from) lent = from;
        return false;
      }
      if (sent === length) finish();
      return true;
    };
    /** Takes body bytes from a read (`from`: the transfer buffer they are in, unless a copy); false to pause the socket. */
    const take = (bytes: Buffer, from: Buffer | undefined): boolean => {
      const body = bytes.length > length - received ? bytes.subarray(0, length - received) : bytes;
      received += body.length;
      if (body.length === 0) return true;
      // A TLS socket still delivers what it had decrypted after a pause: those bytes are copied and wait their turn.
      if (waiting) {
        held.push(from ? Buffer.from(body) : body);
        return false;
      }
      return write(body, from);
    };

    /** Takes the response head; returns the body bytes that came with it, or undefined when no body is to be written. */
    const onHead = (h: Head, rest: Buffer): Buffer | undefined => {
      head = h;
      const framed = framedLength(h);
      if (h.status < 200 || h.status > 299) {
        errorLeft = Math.min(framed ?? ERROR_BODY_MAX, ERROR_BODY_MAX);
        onErrorBody(rest);
        return undefined;
      }
      if (framed === undefined) {
        finish(new UnframedResponse(`GET ${url.pathname} answered without a Content-Length`));
        return undefined;
      }
      const whole = h.status === 200 && (rangeOffset === undefined || rangeOffset === 0);
      if ((h.status !== 206 && !whole) || framed !== length) {
        finish(
          new Error(
            `GET ${url.pathname} answered ${h.status} with ${framed} bytes, expected ${length}${rangeOffset === undefined ? '' : ` from ${rangeOffset}`}`,
          ),
        );
        return undefined;
      }
      // The head's buffer is the reused one: the body bytes in it are copied out before the next read.
      return Buffer.from(rest);
    };
    const onErrorBody = (bytes: Buffer): void => {
      errorBody += bytes.subarray(0, errorLeft).toString('utf8');
      errorLeft -= Math.min(errorLeft, bytes.length);
      if (errorLeft === 0) finish(new HttpStatusError(head!.status, errorBody));
    };

    const onRead = (n: number, buf: Buffer): boolean => {
      if (settled) return false;
      const bytes = buf.subarray(0, n);
      if (head === undefined) {
        headBytes.push(Buffer.from(bytes));
        headSize += n;
        const all = Buffer.concat(headBytes, headSize);
        const end = all.indexOf('\r\n\r\n');
        if (end < 0) {
          if (headSize > HEAD_MAX) finish(new Error(`GET ${url.pathname}: response head over ${HEAD_MAX} bytes`));
          return !settled;
        }
        headBytes = [];
        let h: Head;
        try {
          h = parseHead(all.subarray(0, end).toString('latin1'));
        } catch (e) {
          finish(e as Error);
          return false;
        }
        const body = onHead(h, all.subarray(end + 4));
        return body === undefined ? !settled : take(body, undefined);
      }
      if (errorLeft > 0) {
        onErrorBody(bytes);
        return !settled;
      }
      return take(bytes, buf);
    };

    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const onread = { buffer: nextBuffer, callback: onRead };
    // tls.connect takes onread as net.connect does (Node's docs), though @types/node leaves it out.
    const socket: Socket =
      url.protocol === 'https:'
        ? tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }), onread } as ConnectionOptions)
        : netConnect({ host, port, onread });
    socket.setNoDelay(true);
    // A server that stops sending would otherwise hold the transfer, its buffer and the client for good.
    // Idle while the receiver holds the buffer is the receiver's slowness, not the server's: not counted.
    socket.setTimeout(stallMs);
    socket.on('timeout', () => {
      // The timer re-arms only on socket activity: after a wait on the receiver, arm it again by hand.
      if (waiting) socket.setTimeout(stallMs);
      else
        finish(
          new Error(
            `GET ${url.pathname}: the server sent nothing for ${stallMs} ms (${received} of ${length} bytes received)`,
          ),
        );
    });
    // With every byte received, an error or close is the server's end of the connection after its answer:
    // the writes still under way finish the transfer.
    socket.on('error', (e) => {
      if (received !== length) finish(e);
    });
    socket.on('close', () => {
      if (received === length) return;
      if (head && errorLeft > 0) return finish(new HttpStatusError(head.status, errorBody));
      finish(new Error(`GET ${url.pathname}: connection closed after ${sent} of ${length} bytes`));
    });
    out.once('close', onOutClose);
    out.on('error', onOutError);
    // A receiver can emit an error a tick after this transfer has let go of it: never an uncaught exception.
    if (!out.listeners('error').includes(ignoreLateError)) out.on('error', ignoreLateError);
    if (out.destroyed) return onOutClose();
    let text = `GET ${url.pathname}${url.search} HTTP/1.1\r\n`;
    const names = Object.keys(req.headers).map((k) => k.toLowerCase());
    if (!names.includes('host')) text += `Host: ${url.host}\r\n`;
    for (const [k, v] of Object.entries(req.headers)) {
      if (/[\r\n]/.test(k + v)) return finish(new Error(`header ${k} holds a line break`));
      if (k.toLowerCase() !== 'connection') text += `${k}: ${v}\r\n`;
    }
    socket.write(`${text}Connection: close\r\n\r\n`);
  });
}
