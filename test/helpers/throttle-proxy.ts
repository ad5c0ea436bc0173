import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** One request as the proxy saw it. */
export interface SeenRequest {
  method: string;
  path: string;
  status: number;
  /** Response body bytes passed on so far. */
  bytes: number;
  /** True once the whole response was passed on. */
  done: boolean;
  startedAt: number;
}

/**
 * A test harness in front of a real registry: forwards every request unchanged and records it (method,
 * path, status, bytes answered, whether the answer finished), and can slow down large answers or delay
 * some requests, to give a test time to act in the middle of a transfer. Every answer comes from the
 * registry behind it.
 */
export interface ThrottleProxy {
  url: string;
  host: string;
  seen: SeenRequest[];
  /** Answers larger than `over` bytes are passed on at `bytesPerSecond`. */
  slow?: { over: number; bytesPerSecond: number };
  /** Requests matching `path` (and `method`, when given) wait this long before they are forwarded. */
  delay?: { path: RegExp; method?: string; ms: number };
  /** Requests of `method` under way now, at most, since the start (or the last reset of `seen`). */
  maxInFlight(method: string, path?: RegExp): number;
  /** Forgets what was seen so far (requests and in-flight peaks). */
  reset(): void;
  close(): Promise<void>;
}

/** Starts a throttling, counting proxy on 127.0.0.1 in front of `target` (`http://127.0.0.1:PORT`). */
export async function startThrottleProxy(target: string): Promise<ThrottleProxy> {
  const t = new URL(target);
  const peaks: { method: string; path: string; at: number; delta: number }[] = [];
  const proxy: ThrottleProxy = {
    url: '',
    host: '',
    seen: [],
    maxInFlight(method, path) {
      let now = 0;
      let max = 0;
      for (const p of [...peaks].sort((a, b) => a.at - b.at || a.delta - b.delta)) {
        if (p.method !== method || (path && !path.test(p.path))) continue;
        now += p.delta;
        max = Math.max(max, now);
      }
      return max;
    },
    reset() {
      proxy.seen.length = 0;
      peaks.length = 0;
    },
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    const entry: SeenRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      status: 0,
      bytes: 0,
      done: false,
      startedAt: Date.now(),
    };
    proxy.seen.push(entry);
    peaks.push({ method: entry.method, path: entry.path, at: entry.startedAt, delta: 1 });
    const end = () => peaks.push({ method: entry.method, path: entry.path, at: Date.now(), delta: -1 });
    res.once('close', end);
    const forward = () => {
      const out = request(
        {
          host: t.hostname,
          port: t.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: t.host },
        },
        async (up) => {
          entry.status = up.statusCode ?? 502;
          res.writeHead(entry.status, up.headers);
          const size = Number(up.headers['content-length'] ?? 0);
          const slow = proxy.slow && size > proxy.slow.over ? proxy.slow : undefined;
          try {
            for await (const chunk of up as AsyncIterable<Buffer>) {
              if (res.destroyed) return up.destroy();
              if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
              entry.bytes += chunk.length;
              if (slow) await sleep((chunk.length / slow.bytesPerSecond) * 1000);
            }
            res.end(() => (entry.done = true));
          } catch {
            res.destroy();
          }
        },
      );
      out.on('error', () => res.destroy());
      req.pipe(out);
    };
    const d = proxy.delay;
    if (d?.path.test(entry.path) && (!d.method || d.method === entry.method)) setTimeout(forward, d.ms);
    else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  proxy.url = `http://127.0.0.1:${port}`;
  proxy.host = `127.0.0.1:${port}`;
  proxy.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return proxy;
}
