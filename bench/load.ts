import { Client } from 'undici';

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
 * `seconds`; latencies are per request in milliseconds. An undici loop rather than autocannon,
 * whose parser waits for a body after a HEAD answered with a Content-Length.
 */
export async function load(url: string, method: 'GET' | 'HEAD', connections: number, seconds: number, headers: Record<string, string> = {}): Promise<LoadResult> {
  const u = new URL(url);
  const path = u.pathname + u.search;
  const clients = Array.from({ length: connections }, () => new Client(u.origin, { pipelining: 1, keepAliveTimeout: 60_000 }));
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  try {
    await Promise.all(
      clients.map(async (client) => {
        while (performance.now() < deadline) {
          const t = performance.now();
          try {
            const res = await client.request({ path, method, headers });
            await res.body.dump();
            if (res.statusCode >= 200 && res.statusCode < 300) latencies.push(performance.now() - t);
            else errors++;
          } catch {
            errors++;
          }
        }
      }),
    );
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  const elapsed = (performance.now() - start) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  return { requests: latencies.length, errors, seconds: elapsed, rps: latencies.length / elapsed, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}
