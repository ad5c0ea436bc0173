import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySignature } from '../../src/events/sign.js';

/** One delivery a receiver got. */
export interface Delivery {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The parsed body: Distribution's envelope or a CloudEvent. */
  json: Record<string, unknown>;
  /** With a secret: whether the Standard Webhooks signature verified. */
  signed?: boolean;
  at: number;
}

/** How a receiver answers: 200, a status of its choice, or never (the socket stays open). */
export type ReceiverMode = 'ok' | 'hang' | { status: number };

/** A webhook receiver on 127.0.0.1 for a test: records what arrives, verifies signatures, fails on purpose. */
export interface EventReceiver {
  url: string;
  port: number;
  deliveries: Delivery[];
  mode: ReceiverMode;
  /** Requests that arrived, answered or not (failures and hangs included). */
  attempts: number;
  /** Requests being held open now (mode 'hang'). */
  held(): number;
  /** Events inside the deliveries, flattened (an envelope's `events`, or the CloudEvent itself). */
  events(): Record<string, unknown>[];
  /** Resolves once `count` events have arrived (and each was answered), or rejects after `ms`. */
  waitFor(count: number, ms?: number): Promise<void>;
  /** Stops listening and cuts every connection; `restart` listens again on the same port. */
  close(): Promise<void>;
  restart(): Promise<void>;
}

/** Starts a receiver; with `secret`, every delivery's signature is checked and recorded in `signed`. */
export async function startEventReceiver(opts: { secret?: string; port?: number } = {}): Promise<EventReceiver> {
  const hanging = new Set<ServerResponse>();
  const make = () =>
    createServer((req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= 4 << 20) chunks.push(c);
      });
      req.on('end', () => {
        r.attempts++;
        const body = Buffer.concat(chunks).toString('utf8');
        const mode = r.mode;
        if (mode === 'hang') {
          hanging.add(res);
          return;
        }
        if (mode !== 'ok') {
          res.writeHead(mode.status).end('no');
          return;
        }
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(body) as Record<string, unknown>;
        } catch {
          json = {};
        }
        const d: Delivery = { path: req.url ?? '', headers: req.headers, body, json, at: Date.now() };
        if (opts.secret) d.signed = verifySignature(opts.secret, req.headers, body);
        r.deliveries.push(d);
        res.writeHead(200).end('ok');
      });
    });
  let server = make();
  const listen = (port: number) =>
    new Promise<number>((res, rej) => {
      server.once('error', rej);
      server.listen(port, '127.0.0.1', () => res((server.address() as AddressInfo).port));
    });
  const port = await listen(opts.port ?? 0);
  const r: EventReceiver = {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    deliveries: [],
    mode: 'ok',
    attempts: 0,
    held: () => [...hanging].filter((h) => !h.destroyed && !h.writableEnded && !h.socket?.destroyed).length,
    events() {
      return r.deliveries.flatMap((d) =>
        Array.isArray(d.json['events']) ? (d.json['events'] as Record<string, unknown>[]) : [d.json],
      );
    },
    async waitFor(count, ms = 20_000) {
      const deadline = Date.now() + ms;
      while (r.events().length < count) {
        if (Date.now() > deadline) throw new Error(`receiver got ${r.events().length} events, expected ${count}`);
        await new Promise((res) => setTimeout(res, 20));
      }
    },
    async close() {
      for (const h of hanging) h.destroy();
      hanging.clear();
      await new Promise<void>((res) => {
        server.close(() => res());
        server.closeAllConnections();
      });
    },
    async restart() {
      server = make();
      await listen(port);
    },
  };
  return r;
}
