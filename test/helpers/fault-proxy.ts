import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the proxy does with the next requests: pass them on, answer a status itself, or never answer. */
export type FaultMode =
  | { kind: 'pass' }
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  | { kind: 'hang' }
  /** Forward, but cut the connection after `bytes` of a response body whose path matches (an upstream dying mid-blob). */
  | { kind: 'cut'; bytes: number; path: RegExp };

/**
 * A test harness in front of a real registry: forwards requests unchanged, records each one, and can be
 * told to answer a status (503, 429) or hang, to play an upstream in trouble. It is not a mock: every
 * answer in `pass` mode comes from the real registry behind it.
 */
export interface FaultProxy {
  url: string;
  mode: FaultMode;
  /** `METHOD path` of every request received. */
  seen: string[];
  /** Extra response headers added to every forwarded answer (rate-limit headers, say). */
  addHeaders: Record<string, string>;
  /** Runs before a request is forwarded, and the request waits for it: something that happens while an upstream answers. */
  beforeForward?: (req: IncomingMessage) => Promise<void>;
  /** What `beforeForward` threw. */
  hookErrors: unknown[];
  close(): Promise<void>;
}

/** Starts a fault proxy on 127.0.0.1 in front of `target` (`http://127.0.0.1:PORT`). */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const t = new URL(target);
  const hung: IncomingMessage[] = [];
  const proxy: FaultProxy = {
    url: '',
    mode: { kind: 'pass' },
    seen: [],
    addHeaders: {},
    hookErrors: [],
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    proxy.seen.push(`${req.method} ${req.url}`);
    const mode = proxy.mode;
    if (mode.kind === 'hang') {
      hung.push(req);
      return;
    }
    if (mode.kind === 'status') {
      req.resume();
      res.writeHead(mode.status, { 'content-type': 'application/json', ...(mode.headers ?? {}) });
      res.end(
        JSON.stringify({
          errors: [{ code: mode.status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE', message: 'injected by the test' }],
        }),
      );
      return;
    }
    if (!proxy.beforeForward) return forward(req, res, mode);
    // A failing hook is the test's failure: the request gets a 502 and the error is kept for the test to see.
    void proxy.beforeForward(req).then(
      () => forward(req, res, mode),
      (e: unknown) => {
        proxy.hookErrors.push(e);
        req.resume();
        res.writeHead(502).end();
      },
    );
  });
  const forward = (req: IncomingMessage, res: ServerResponse, mode: FaultMode): void => {
    const out = request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, { ...up.headers, ...proxy.addHeaders });
        if (mode.kind === 'cut' && mode.path.test(req.url ?? '')) {
          let sent = 0;
          up.on('data', (c: Buffer) => {
            const room = mode.bytes - sent;
            if (room > 0) res.write(c.subarray(0, room));
            sent += c.length;
            if (sent >= mode.bytes) {
              up.destroy();
              res.socket?.destroy();
            }
          });
          return;
        }
        up.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = async () => {
    for (const r of hung) r.socket.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return proxy;
}
