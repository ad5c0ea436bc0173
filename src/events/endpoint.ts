import { request } from '../transport/undici-core.js';
import { parseDuration } from '../config/duration.js';
import type { StorageDriver } from '../storage/driver.js';
import type { EndpointConfig } from './config.js';
import { endpointFilter, type EventFilter } from './filter.js';
import { render } from './format.js';
import type { Journal } from './journal.js';
import type { EventMetrics } from './metrics.js';
import { cursorPath, deadDir } from './paths.js';
import { signedHeaders } from './sign.js';
import type { RegistryEvent } from './types.js';

/** Where an endpoint stands, as kept in storage: `sluice events status` reads it. */
export interface DeliveryState {
  /** The sequence number of the last event delivered, filtered out or set aside. */
  cursor: number;
  delivered: number;
  dead: number;
  dropped: number;
  failingSince?: string;
  lastError?: string;
  updated: string;
}

/** A logger as pino's: an object and a message. */
export interface EventLog {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
}

/** Events read from the journal at a time. */
const READ_BATCH = 100;
/** How long a receiver's answer body is read (and thrown away). */
const ANSWER_LIMIT = 64 * 1024;
/** How soon a changed cursor is written: often enough that a restart repeats little, rarely enough to cost nothing. */
const SAVE_DELAY_MS = 200;

/** Sends one rendered event to an endpoint; throws with a message on anything but a 2xx answer. */
export async function sendEvent(
  endpoint: EndpointConfig,
  e: RegistryEvent,
  includeReferences: boolean,
  signal?: AbortSignal,
): Promise<void> {
  const { contentType, body } = render(e, endpoint, includeReferences);
  const headers: Record<string, string> = { 'user-agent': 'sluice-notifications' };
  for (const [k, v] of Object.entries(endpoint.headers)) headers[k.toLowerCase()] = v.join(', ');
  headers['content-type'] = contentType;
  if (endpoint.secret) Object.assign(headers, signedHeaders(endpoint.secret, e.id, body));
  const timeout = parseDuration(endpoint.timeout);
  const signals = [AbortSignal.timeout(timeout), ...(signal ? [signal] : [])];
  const res = await request(endpoint.url, {
    method: 'POST',
    headers,
    body,
    signal: AbortSignal.any(signals),
    headersTimeout: timeout,
    bodyTimeout: timeout,
  });
  await res.body.dump({ limit: ANSWER_LIMIT }).catch(() => undefined);
  if (res.statusCode < 200 || res.statusCode > 299) throw new Error(`${endpoint.name} answered ${res.statusCode}`);
}

/**
 * Delivers one node's journal to one endpoint, in order, apart from any request: a cursor in storage,
 * at least once (the cursor moves only after a 2xx), retries with capped exponential backoff after
 * `threshold` failures in a row, and a dead letter once an event is older than `maxage` or has had
 * `maxtries` tries. At most one request to the endpoint is in flight, so a dead receiver costs one socket.
 */
export class EndpointWorker {
  state: DeliveryState = { cursor: -1, delivered: 0, dead: 0, dropped: 0, updated: new Date().toISOString() };
  private readonly filter: EventFilter;
  private readonly abort = new AbortController();
  private failures = 0;
  private wake: (() => void) | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly stateFile: string;

  constructor(
    readonly endpoint: EndpointConfig,
    private readonly journal: Journal,
    private readonly driver: StorageDriver,
    private readonly opts: { includeReferences: boolean; metrics: EventMetrics; log: EventLog },
  ) {
    this.filter = endpointFilter(endpoint);
    this.stateFile = cursorPath(journal.node, endpoint.name);
  }

  /** Events of the journal this endpoint has not yet been given. */
  pending(): number {
    return Math.max(0, this.journal.lastSeq() - this.state.cursor);
  }

  /** Reads the cursor (a new endpoint starts at the journal's end, written at once) and starts delivering. */
  async start(): Promise<void> {
    const saved = await this.driver.getContent(this.stateFile);
    if (saved) {
      this.state = { ...this.state, ...(JSON.parse(saved.toString('utf8')) as DeliveryState) };
    } else {
      this.state.cursor = this.journal.lastSeq();
      await this.save();
    }
    this.running = this.run().catch((e: unknown) => {
      this.opts.log.warn({ endpoint: this.endpoint.name, err: (e as Error).message }, 'event delivery stopped');
    });
  }

  /**
   * Wakes the loop: new events are in the journal. Not while backing off from a failing endpoint: new events
   * do not make it answer, and waking it at every journal write would retry a dead endpoint at the rate of
   * requests, which costs those requests (found by the events bench: pushes slowed with a dead endpoint).
   */
  /** True when this endpoint would send the event (its filters admit it). */
  wants(e: RegistryEvent): boolean {
    return this.filter(e);
  }

  notify(): void {
    if (this.failures === 0) this.wake?.();
  }

  /** Events the journal dropped past its bound: those this endpoint had not had are counted as lost. */
  dropped(first: number, last: number): void {
    if (last <= this.state.cursor) return;
    const lost = last - Math.max(this.state.cursor, first - 1);
    this.state.dropped += lost;
    this.state.cursor = last;
    this.opts.metrics.dropped.inc({ endpoint: this.endpoint.name }, lost);
    this.opts.log.warn(
      { endpoint: this.endpoint.name, lost, first, last },
      'event journal full: undelivered events dropped',
    );
    this.scheduleSave();
  }

  /** Stops delivering (an event in flight is not counted as delivered) and writes the cursor. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.wake?.();
    await this.running;
    clearTimeout(this.saveTimer);
    await this.save().catch(() => undefined);
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const batch = await this.journal.read(this.state.cursor, READ_BATCH);
      if (batch.length === 0) {
        await this.sleep(1000);
        continue;
      }
      for (const e of batch) {
        if (this.stopped) return;
        if (e.seq <= this.state.cursor) continue;
        if (this.filter(e) && !(await this.deliver(e))) return;
        this.state.cursor = e.seq;
        this.scheduleSave();
      }
    }
  }

  /** Tries one event until it is delivered or set aside; false when stopped first. */
  private async deliver(e: RegistryEvent): Promise<boolean> {
    const name = this.endpoint.name;
    const maxAge = parseDuration(this.endpoint.maxage);
    for (let tries = 1; ; tries++) {
      if (this.stopped) return false;
      try {
        await sendEvent(this.endpoint, e, this.opts.includeReferences, this.abort.signal);
        this.state.delivered++;
        this.opts.metrics.delivered.inc({ endpoint: name });
        if (this.failures > 0) {
          this.failures = 0;
          delete this.state.failingSince;
          this.opts.log.info({ endpoint: name }, 'event endpoint answers again');
        }
        return true;
      } catch (err) {
        if (this.stopped) return false;
        const message = (err as Error).message || String(err);
        this.failures++;
        this.opts.metrics.failures.inc({ endpoint: name });
        this.state.lastError = message.slice(0, 500);
        // Written when the endpoint starts failing; later errors ride along with the next cursor write.
        if (!this.state.failingSince) {
          this.state.failingSince = new Date().toISOString();
          this.scheduleSave();
        }
        if (this.failures === this.endpoint.threshold + 1) {
          this.opts.log.warn({ endpoint: name, err: message }, 'event endpoint failing; backing off');
        }
        const tooOld = Date.now() - Date.parse(e.timestamp) > maxAge;
        if (tooOld || (this.endpoint.maxtries > 0 && tries >= this.endpoint.maxtries)) {
          await this.deadLetter(e, tries, message);
          return true;
        }
        await this.sleep(this.delay());
      }
    }
  }

  /** No wait for the first `threshold` failures in a row, then `backoff` doubling up to `maxbackoff`. */
  private delay(): number {
    const over = this.failures - this.endpoint.threshold;
    if (over <= 0) return 0;
    const base = parseDuration(this.endpoint.backoff);
    return Math.min(base * 2 ** Math.min(over - 1, 30), parseDuration(this.endpoint.maxbackoff));
  }

  private async deadLetter(e: RegistryEvent, tries: number, error: string): Promise<void> {
    const path = `${deadDir(this.journal.node, this.endpoint.name)}/${String(e.seq).padStart(16, '0')}.json`;
    await this.driver.putContent(
      path,
      Buffer.from(JSON.stringify({ event: e, tries, error, at: new Date().toISOString() })),
    );
    this.state.dead++;
    this.opts.metrics.dead.inc({ endpoint: this.endpoint.name });
    this.opts.log.warn(
      { endpoint: this.endpoint.name, id: e.id, tries, err: error },
      'event set aside as a dead letter',
    );
  }

  private sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        off();
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      const off = this.journal.onAppend(() => (this.failures === 0 ? done() : undefined));
      this.wake = done;
    });
  }

  private scheduleSave(): void {
    if (this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.save().catch((e: unknown) => {
        this.opts.log.warn({ endpoint: this.endpoint.name, err: (e as Error).message }, 'event cursor not saved');
      });
    }, SAVE_DELAY_MS);
    this.saveTimer.unref();
  }

  private async save(): Promise<void> {
    this.state.updated = new Date().toISOString();
    await this.driver.putContent(this.stateFile, Buffer.from(JSON.stringify(this.state)), { durable: false });
  }
}
