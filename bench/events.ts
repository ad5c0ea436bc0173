// The events workload (issue 20): what configured notification endpoints cost the requests that cause
// events, and how fast a journal drains. Each server kind is started three times: with two endpoints (a
// slow receiver that answers after 2 s and a port nothing listens on), with `notifications:` and no
// endpoint (Sluice still journals every event), and with no `notifications:` at all; the same pushes,
// manifest PUTs and manifest GETs (each one an event) are timed on each, one after the other.
// Then a third server with one fast local receiver: its first delivery is held while a burst of pulls
// piles events up, then released; events per second is how fast the backlog arrives.
import { randomBytes, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../src/config/load.js';
import { buildRegistry } from '../src/registry/server.js';
import { pushBytes, putManifest } from './http.js';
import { load } from './load.js';
import type { MetricInfo } from './report.js';
import { freePort, startServer, type BenchServer, type ServerKind, type ServerOptions } from './servers.js';
import { pushSmallImage, type Sample } from './workloads.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** Clients pushing or pulling at once in the throughput rows. */
const CONNECTIONS = 16;
/** How long the slow receiver takes to answer. */
const SLOW_MS = 2000;

/** The rows this workload fills: each throughput with endpoints, without, and the ratio of the two. */
export const EVENTS_METRICS: MetricInfo[] = (() => {
  const m: MetricInfo[] = [];
  const rows = [
    ['push', `blob push (POST + PUT, 1 KiB), ${CONNECTIONS} clients`, 'push/s'],
    ['put', `manifest PUT under a new tag, ${CONNECTIONS} clients`, 'req/s'],
    ['get1', 'manifest GET by tag, 1 conn', 'req/s'],
    ['get16', `manifest GET by tag, ${CONNECTIONS} conn`, 'req/s'],
  ] as const;
  for (const [id, label, unit] of rows) {
    m.push({ id: `events.${id}.with`, label: `events: ${label}, 2 endpoints (slow, dead)`, unit, better: 'higher' });
    m.push({
      id: `events.${id}.none`,
      label: `events: ${label}, notifications with no endpoint`,
      unit,
      better: 'higher',
    });
    m.push({ id: `events.${id}.off`, label: `events: ${label}, no notifications: block`, unit, better: 'higher' });
    m.push({
      id: `events.${id}.ratio`,
      label: `events: ${label}, 2 endpoints / no endpoint (target ≥ 0.95)`,
      unit: '×',
      better: 'higher',
    });
    m.push({
      id: `events.${id}.price`,
      label: `events: ${label}, 2 endpoints / no notifications: block`,
      unit: '×',
      better: 'higher',
    });
  }
  const inject = 'in process, alternating batches (Dist column: same Sluice, notifications with no endpoint)';
  m.push({
    id: 'events.inject.get',
    label: `events: warm manifest GET, 2 endpoints, ${inject}`,
    unit: 'µs',
    better: 'lower',
  });
  m.push({
    id: 'events.inject.put',
    label: `events: manifest PUT, 2 endpoints, ${inject}`,
    unit: 'µs',
    better: 'lower',
  });
  m.push({
    id: 'events.drain.rate',
    label: 'events: backlog delivered to a fast local receiver',
    unit: 'ev/s',
    better: 'higher',
  });
  m.push({
    id: 'events.drain.count',
    label: 'events: backlog size (pull events piled up while held)',
    unit: 'req',
    better: 'higher',
  });
  return m;
})();

/** A local receiver for the bench: answers after `delayMs`, or holds everything until released. */
interface BenchReceiver {
  url: string;
  /** Pull events of `repository` received (and answered) so far. */
  pulls(repository: string): number;
  /** Answers every held request and stops holding. */
  release(): void;
  close(): Promise<void>;
}

function startReceiver(opts: { delayMs?: number; hold?: boolean }): Promise<BenchReceiver> {
  const held: ServerResponse[] = [];
  let holding = opts.hold ?? false;
  const counts = new Map<string, number>();
  const count = (body: string) => {
    try {
      const doc = JSON.parse(body) as { events?: { action?: string; target?: { repository?: string } }[] };
      for (const e of doc.events ?? []) {
        if (e.action !== 'pull' || !e.target?.repository) continue;
        counts.set(e.target.repository, (counts.get(e.target.repository) ?? 0) + 1);
      }
    } catch {
      // Not an envelope: not counted.
    }
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const answer = () => {
        count(body);
        res.writeHead(200).end();
      };
      if (holding) held.push(Object.assign(res, { answer }));
      else if (opts.delayMs) setTimeout(answer, opts.delayMs);
      else answer();
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        url: `http://127.0.0.1:${port}/hook`,
        pulls: (r) => counts.get(r) ?? 0,
        release: () => {
          holding = false;
          for (const r of held.splice(0)) (r as ServerResponse & { answer(): void }).answer();
        },
        close: () =>
          new Promise((res) => {
            server.closeAllConnections();
            server.close(() => res());
          }),
      });
    });
  });
}

/** The receivers every round uses: the slow one, and a port nothing listens on. */
export interface EventsBench {
  slow: BenchReceiver;
  deadUrl: string;
  stop(): Promise<void>;
}

/** Starts the slow receiver and picks a dead port. */
export async function prepareEvents(): Promise<EventsBench> {
  const slow = await startReceiver({ delayMs: SLOW_MS });
  const deadUrl = `http://127.0.0.1:${await freePort()}/hook`;
  return { slow, deadUrl, stop: () => slow.close() };
}

/** The `notifications:` block both servers read: Distribution's keys only, so the same YAML fits both. */
function notificationsYaml(endpoints: { name: string; url: string; timeout: string }[]): string {
  if (endpoints.length === 0) return 'notifications:\n  endpoints: []\n';
  const list = endpoints
    .map((e) => `    - {name: ${e.name}, url: "${e.url}", timeout: ${e.timeout}, threshold: 5, backoff: 1s}`)
    .join('\n');
  return `notifications:\n  endpoints:\n${list}\n`;
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** Runs `op` on `clients` workers for `seconds`; operations per second that succeeded (a failure throws). */
async function throughput(
  clients: number,
  seconds: number,
  op: (worker: number, n: number) => Promise<void>,
): Promise<number> {
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: clients }, async (_, w) => {
      for (let n = 0; performance.now() < deadline; n++) {
        await op(w, n);
        done++;
      }
    }),
  );
  return done / ((performance.now() - start) / 1000);
}

/** The four throughput rows on one server, written under `suffix` (`with` or `none`). */
async function measure(s: BenchServer, seconds: number, suffix: string, out: Sample): Promise<void> {
  await pushSmallImage(s.url, 'bench/events', 'latest');
  const manifest = await (
    await fetch(`${s.url}/v2/bench/events/manifests/latest`, { headers: { accept: OCI_MANIFEST } })
  ).arrayBuffer();
  out[`events.push.${suffix}`] = await throughput(CONNECTIONS, seconds, async () => {
    const bytes = randomBytes(1024);
    await pushBytes(s.url, 'bench/events-push', bytes, sha256(bytes));
  });
  out[`events.put.${suffix}`] = await throughput(CONNECTIONS, seconds, (w, n) =>
    putManifest(s.url, 'bench/events', `w${w}-${n}`, Buffer.from(manifest), OCI_MANIFEST),
  );
  for (const [id, c] of [
    ['get1', 1],
    ['get16', CONNECTIONS],
  ] as const) {
    const r = await load(`${s.url}/v2/bench/events/manifests/latest`, 'GET', c, seconds, { accept: OCI_MANIFEST });
    if (r.errors > 0 || r.requests === 0)
      throw new Error(`events GET at ${c} connections: ${r.errors} errors, ${r.requests} answered`);
    out[`events.${id}.${suffix}`] = r.rps;
  }
}

/**
 * One round for one server kind: the server without notifications and the one with both endpoints,
 * measured one after the other (which goes first alternates by round), then the drain to a fast receiver.
 */
export async function eventsRound(
  kind: ServerKind,
  bench: EventsBench,
  round: number,
  seconds: number,
  out: Sample,
  opts: ServerOptions = {},
): Promise<void> {
  const endpoints = notificationsYaml([
    { name: 'slow', url: bench.slow.url, timeout: '5s' },
    { name: 'dead', url: bench.deadUrl, timeout: '1s' },
  ]);
  const variants: [string, string][] = [
    ['with', endpoints],
    ['none', notificationsYaml([])],
    ['off', ''],
  ];
  const order = round % 2 === 0 ? variants : [...variants].reverse();
  for (const [suffix, yaml] of order) {
    const s = await startServer(kind, { ...opts, extraConfig: `${opts.extraConfig ?? ''}${yaml}` });
    try {
      await measure(s, seconds, suffix, out);
    } finally {
      await s.stop();
    }
  }
  for (const id of ['push', 'put', 'get1', 'get16']) {
    out[`events.${id}.ratio`] = out[`events.${id}.with`]! / out[`events.${id}.none`]!;
    out[`events.${id}.price`] = out[`events.${id}.with`]! / out[`events.${id}.off`]!;
  }
  await drain(kind, seconds, out, opts);
}

/** Piles up pull events behind a held first delivery, releases it, and times the backlog's arrival. */
async function drain(kind: ServerKind, seconds: number, out: Sample, opts: ServerOptions): Promise<void> {
  const fast = await startReceiver({ hold: true });
  const yaml = notificationsYaml([{ name: 'fast', url: fast.url, timeout: '120s' }]);
  const s = await startServer(kind, { ...opts, extraConfig: `${opts.extraConfig ?? ''}${yaml}` });
  try {
    await pushSmallImage(s.url, 'bench/drain', 'latest');
    const r = await load(`${s.url}/v2/bench/drain/manifests/latest`, 'GET', CONNECTIONS, Math.max(1, seconds / 2), {
      accept: OCI_MANIFEST,
    });
    const expected = r.requests;
    const start = performance.now();
    fast.release();
    const deadline = start + 180_000;
    while (fast.pulls('bench/drain') < expected && performance.now() < deadline)
      await new Promise((res) => setTimeout(res, 20));
    const got = fast.pulls('bench/drain');
    out['events.drain.rate'] = got / ((performance.now() - start) / 1000);
    out['events.drain.count'] = expected;
    if (got < expected) process.stderr.write(`bench: events drain (${kind}): ${got} of ${expected} events in 180 s\n`);
  } finally {
    await s.stop();
    await fast.close();
  }
}

/**
 * The same comparison without the network or a second process's scheduling: two registries in this
 * process, one with both endpoints and one with notifications and no endpoint (both journal every
 * event), and alternating batches of warm GETs and manifest PUTs through Fastify's inject, so whatever
 * else the machine does falls on both alike. µs per request, median over batches.
 */
export async function eventsInProcess(
  bench: EventsBench,
  seconds: number,
  withEndpoints: Sample,
  noEndpoint: Sample,
): Promise<void> {
  const dirs = await Promise.all([0, 1].map(() => mkdtemp(join(tmpdir(), 'sluice-bench-events-'))));
  const endpoints = [
    { name: 'slow', url: bench.slow.url, timeout: '5s', threshold: 5, backoff: '1s' },
    { name: 'dead', url: bench.deadUrl, timeout: '1s', threshold: 5, backoff: '1s' },
  ];
  const regs = dirs.map((dir, i) => {
    const raw = {
      log: { level: 'silent' },
      http: { addr: '127.0.0.1:0' },
      storage: { filesystem: { rootdirectory: dir } },
      notifications: { journal: { node: 'bench' }, endpoints: i === 0 ? endpoints : [] },
    };
    return buildRegistry({ config: validateConfig(raw).config, logger: false });
  });
  try {
    const urls = await Promise.all(regs.map((r) => r.app.listen({ host: '127.0.0.1', port: 0 })));
    for (const url of urls) await pushSmallImage(url, 'bench/events', 'latest');
    const manifest = Buffer.from(
      await (
        await fetch(`${urls[0]}/v2/bench/events/manifests/latest`, { headers: { accept: OCI_MANIFEST } })
      ).arrayBuffer(),
    );
    let tags = 0;
    const batch = async (i: number, kind: 'get' | 'put'): Promise<number> => {
      const app = regs[i]!.app;
      const n = kind === 'get' ? 200 : 50;
      const t = performance.now();
      for (let k = 0; k < n; k++) {
        const r =
          kind === 'get'
            ? await app.inject({
                method: 'GET',
                url: '/v2/bench/events/manifests/latest',
                headers: { accept: OCI_MANIFEST },
              })
            : await app.inject({
                method: 'PUT',
                url: `/v2/bench/events/manifests/t${tags++}`,
                headers: { 'content-type': OCI_MANIFEST },
                payload: manifest,
              });
        if (r.statusCode >= 300) throw new Error(`in-process ${kind} answered ${r.statusCode}`);
      }
      return ((performance.now() - t) * 1000) / n;
    };
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    for (const kind of ['get', 'put'] as const) {
      const times: [number[], number[]] = [[], []];
      const deadline = performance.now() + seconds * 1000;
      for (let k = 0; performance.now() < deadline || k < 4; k++) {
        for (const i of k % 2 === 0 ? [0, 1] : [1, 0]) times[i as 0 | 1].push(await batch(i, kind));
      }
      withEndpoints[`events.inject.${kind}`] = median(times[0]);
      noEndpoint[`events.inject.${kind}`] = median(times[1]);
    }
  } finally {
    await Promise.all(regs.map((r) => r.app.close()));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}
