import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';

/**
 * One way an upstream misbehaves. Every answer that is not a lie comes from the real registry behind the
 * harness, so a test sees the real protocol everywhere except where it asked to be lied to.
 */
export type Lie =
  /** `tags/list` answered with these tags (traversal, nested, oversized: whatever the test wants to try). */
  | { kind: 'tags'; tags: string[]; name?: string }
  /** `_catalog` answered with these repository names. */
  | { kind: 'catalog'; repositories: string[] }
  /** A status of the harness's own, with a JSON body, or `bodyBytes` of filler when given (a huge error body, chunked when `contentLength` is false). */
  | { kind: 'status'; status: number; headers?: Record<string, string>; bodyBytes?: number; contentLength?: boolean }
  /** `200 Content-Length: 0`: an empty body where a blob or manifest was asked for. */
  | { kind: 'empty'; headers?: Record<string, string> }
  /** `200` with `bytes` of filler, with or without a Content-Length (a huge manifest, tag list or token answer). */
  | { kind: 'huge'; bytes: number; contentLength?: boolean; contentType?: string }
  /** `200`, chunked, filler until the client gives up or `bytes` (default 4 GiB) have gone. */
  | { kind: 'endless'; bytes?: number }
  /** The real answer with one byte of its body changed (a digest lie; the length is right). */
  | { kind: 'corrupt' }
  /** The real answer's headers, with its Content-Length replaced by `declared` (a length lie); the body is sent as it is, cut at `declared`. */
  | { kind: 'length'; declared: number }
  /** The real answer sent at `bytesPerSecond`, in small pieces: a slow or dripping upstream. */
  | { kind: 'drip'; bytesPerSecond: number }
  /** A redirect to the harness itself, for ever. */
  | { kind: 'redirect-loop' }
  /** A redirect to `to`. */
  | { kind: 'redirect'; to: string; status?: number }
  /** Accept the request and never answer. */
  | { kind: 'hang' }
  /** Hold the request until `until` settles, then pass it to the real registry (a slow answer the test ends). */
  | { kind: 'hold'; until: Promise<void> };

/** A lie applied to requests whose `METHOD path` matches, for the first `times` of them (all, when unset). */
export interface LieRule {
  match: RegExp;
  lie: Lie;
  times?: number;
}

/** A lying upstream in front of a real registry: see `startHostileUpstream`. */
export interface HostileUpstream {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** `127.0.0.1:PORT`. */
  host: string;
  /** Rules, first match decides; requests no rule matches are passed to the real registry unchanged. */
  rules: LieRule[];
  /** `METHOD path` of every request received, in order. */
  seen: string[];
  /** Bytes of body the harness itself sent for lies (filler, drips, corrupted answers). */
  lieBytesSent: number;
  /** The most client connections open at once so far. */
  peakConnections: number;
  /** Adds a rule and returns the harness, for chaining. */
  lie(match: RegExp, lie: Lie, times?: number): HostileUpstream;
  close(): Promise<void>;
}

const FILLER = Buffer.alloc(1 << 20, 0x61);

/**
 * Starts a hostile upstream on 127.0.0.1 in front of `target` (a real registry's `http://127.0.0.1:PORT`):
 * it forwards every request unchanged unless a rule says to lie, and can lie about lengths and digests,
 * send empty, endless, huge or dripping bodies, return traversal and oversized names and tags, huge error
 * and token bodies, and redirect loops. It is a test harness, not a mock: the truth comes from `target`.
 */
export async function startHostileUpstream(target: string): Promise<HostileUpstream> {
  const t = new URL(target);
  const sockets = new Set<Socket>();
  const h: HostileUpstream = {
    url: '',
    host: '',
    rules: [],
    seen: [],
    lieBytesSent: 0,
    peakConnections: 0,
    lie(match, lie, times) {
      h.rules.push({ match, lie, times });
      return h;
    },
    close: async () => undefined,
  };

  function ruleFor(line: string): Lie | undefined {
    for (const r of h.rules) {
      if (!r.match.test(line)) continue;
      if (r.times !== undefined) {
        if (r.times <= 0) continue;
        r.times--;
      }
      return r.lie;
    }
    return undefined;
  }

  /** Writes `bytes` of filler honouring backpressure; stops when the client goes away. */
  async function fill(res: ServerResponse, bytes: number): Promise<void> {
    let left = bytes;
    while (left > 0 && !res.destroyed) {
      const piece = left >= FILLER.length ? FILLER : FILLER.subarray(0, left);
      left -= piece.length;
      h.lieBytesSent += piece.length;
      if (!res.write(piece))
        await new Promise<void>((resolve) => {
          res.once('drain', resolve);
          res.once('close', resolve);
        });
    }
    res.end();
  }

  /** Sends the real registry's answer to `req`, handing its head and body to `answer`. */
  function forward(req: IncomingMessage, res: ServerResponse, answer: (up: IncomingMessage) => void): void {
    const out = request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host } },
      answer,
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  }

  async function drip(up: IncomingMessage, res: ServerResponse, bytesPerSecond: number): Promise<void> {
    const piece = Math.max(1, Math.floor(bytesPerSecond / 10));
    for await (const chunk of up) {
      const b = chunk as Buffer;
      for (let i = 0; i < b.length && !res.destroyed; i += piece) {
        const part = b.subarray(i, i + piece);
        h.lieBytesSent += part.length;
        res.write(part);
        await new Promise((resolve) => setTimeout(resolve, (part.length / bytesPerSecond) * 1000));
      }
      if (res.destroyed) {
        up.destroy();
        return;
      }
    }
    res.end();
  }

  function tell(req: IncomingMessage, res: ServerResponse, lie: Lie): void {
    switch (lie.kind) {
      case 'tags': {
        const name = lie.name ?? /^\/v2\/(.+)\/tags\/list/.exec(req.url ?? '')?.[1] ?? 'x';
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ name, tags: lie.tags }));
        return;
      }
      case 'catalog':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ repositories: lie.repositories }));
        return;
      case 'status': {
        const headers = { 'content-type': 'application/json', ...lie.headers };
        if (lie.bodyBytes !== undefined) {
          res.writeHead(
            lie.status,
            lie.contentLength === false ? headers : { ...headers, 'content-length': String(lie.bodyBytes) },
          );
          void fill(res, lie.bodyBytes);
          return;
        }
        res.writeHead(lie.status, headers);
        res.end(
          JSON.stringify({
            errors: [
              { code: lie.status === 429 ? 'TOOMANYREQUESTS' : 'UNKNOWN', message: 'a lie of the hostile upstream' },
            ],
          }),
        );
        return;
      }
      case 'empty':
        res.writeHead(200, { 'content-length': '0', ...lie.headers });
        res.end();
        return;
      case 'huge':
        res.writeHead(200, {
          'content-type': lie.contentType ?? 'application/json',
          ...(lie.contentLength === false ? {} : { 'content-length': String(lie.bytes) }),
        });
        void fill(res, lie.bytes);
        return;
      case 'endless':
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        void fill(res, lie.bytes ?? 4 * 1024 ** 3);
        return;
      case 'hang':
        return;
      case 'hold':
        void lie.until.finally(() =>
          forward(req, res, (up) => {
            res.writeHead(up.statusCode ?? 502, up.headers);
            up.pipe(res);
          }),
        );
        return;
      case 'redirect-loop':
        res.writeHead(307, { location: `${h.url}${req.url}` });
        res.end();
        return;
      case 'redirect':
        res.writeHead(lie.status ?? 307, { location: lie.to });
        res.end();
        return;
      case 'corrupt':
        forward(req, res, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          let first = true;
          up.on('data', (c: Buffer) => {
            if (first && c.length > 0) {
              const copy = Buffer.from(c);
              copy[0] = copy[0]! ^ 0xff;
              c = copy;
              first = false;
            }
            h.lieBytesSent += c.length;
            res.write(c);
          });
          up.on('end', () => res.end());
        });
        return;
      case 'length':
        forward(req, res, (up) => {
          res.writeHead(up.statusCode ?? 502, { ...up.headers, 'content-length': String(lie.declared) });
          let sent = 0;
          up.on('data', (c: Buffer) => {
            const room = lie.declared - sent;
            if (room > 0) res.write(c.subarray(0, room));
            sent += c.length;
          });
          // A body shorter than declared leaves the client waiting for bytes that never come: end the connection.
          up.on('end', () => (sent < lie.declared ? res.socket?.end() : res.end()));
        });
        return;
      case 'drip':
        forward(req, res, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          drip(up, res, lie.bytesPerSecond).catch(() => res.destroy());
        });
        return;
    }
  }

  const server: Server = createServer((req, res) => {
    const line = `${req.method} ${req.url}`;
    h.seen.push(line);
    const lie = ruleFor(line);
    if (lie === undefined) {
      forward(req, res, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      return;
    }
    req.resume();
    tell(req, res, lie);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    h.peakConnections = Math.max(h.peakConnections, sockets.size);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (_e, s) => s.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  h.url = `http://127.0.0.1:${port}`;
  h.host = `127.0.0.1:${port}`;
  h.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return h;
}
