import { Agent, request } from 'node:http';

/** What a fixed-duration load run measured. */
export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * Sends `method url` over `connections` keep-alive connections, each one request at a time, for
 * `seconds`; latencies are per request in milliseconds.
 */
export async function load(
  url: string,
  method: 'GET' | 'HEAD',
  connections: number,
  seconds: number,
  headers: Record<string, string> = {},
): Promise<LoadResult> {
  const u = new URL(url);
  // node:http rather than undici, which closes the connection after every HEAD (undici issue 258),
  // and rather than autocannon, whose parser waits for a body after a HEAD with a Content-Length.
  const agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  const once = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = request(
        { host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers, agent },
        (res) => {
          res.on('data', () => {});
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end();
    });
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  try {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (performance.now() < deadline) {
          const t = performance.now();
          try {
            const status = await once();
            if (status >= 200 && status < 300) latencies.push(performance.now() - t);
            else errors++;
          } catch {
            errors++;
          }
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  const elapsed = (performance.now() - start) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  return {
    requests: latencies.length,
    errors,
    seconds: elapsed,
    rps: latencies.length / elapsed,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
  };
}
