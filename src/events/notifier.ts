import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Registry as PromRegistry } from 'prom-client';
import { parseDuration } from '../config/duration.js';
import type { StorageDriver } from '../storage/driver.js';
import type { NotificationsConfig } from './config.js';
import { EndpointWorker, type EventLog } from './endpoint.js';
import { mayAdmitPulls } from './filter.js';
import { Journal } from './journal.js';
import { EventMetrics } from './metrics.js';
import type { EventSink, NewEvent } from './types.js';

/** How often delivered events past `journal.retention` are pruned. */
const PRUNE_EVERY_MS = 60_000;

/** This node's name in the journal: the configured one, else the host name made safe for a path. */
export function nodeName(config: NotificationsConfig): string {
  const host = hostname()
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 64);
  return config.journal.node ?? (host || 'node');
}

/**
 * The events of one registry process: the journal every producer emits into (resolving once durable)
 * and one delivery worker per enabled endpoint, running apart from requests.
 */
export class Notifier implements EventSink {
  readonly journal: Journal;
  readonly workers: EndpointWorker[] = [];
  readonly metrics: EventMetrics;
  /**
   * False when no pull can be journaled (no endpoint's filters admit pulls and `journal.pulls` is not `all`):
   * the routes then build no pull event at all.
   */
  readonly journalsPulls: boolean;
  /** This process's instance id: Distribution's `source.instanceID`. */
  readonly instanceID = randomUUID();
  private pruneTimer: NodeJS.Timeout | undefined;
  private markStarted!: (ok: boolean) => void;
  /** Settles when the journal is open: true, or false when it could not be. */
  private readonly started = new Promise<boolean>((res) => (this.markStarted = res));

  constructor(
    readonly config: NotificationsConfig,
    driver: StorageDriver,
    promRegistry: PromRegistry,
    private readonly log: EventLog,
  ) {
    this.journal = new Journal(driver, nodeName(config), {
      maxEvents: config.journal.maxevents,
      writer: true,
      onDrop: (first, last) => {
        for (const w of this.workers) w.dropped(first, last);
        if (this.workers.length === 0) log.warn({ first, last }, 'event journal full: oldest events dropped');
      },
    });
    this.metrics = new EventMetrics(
      promRegistry,
      () => Object.fromEntries(this.workers.map((w) => [w.endpoint.name, w.pending()])),
      () => this.journal.size(),
    );
    const opts = { includeReferences: config.events.includereferences, metrics: this.metrics, log };
    for (const e of config.endpoints)
      if (!e.disabled) this.workers.push(new EndpointWorker(e, this.journal, driver, opts));
    this.journalsPulls =
      config.journal.pulls === 'all' || config.endpoints.some((e) => !e.disabled && mayAdmitPulls(e));
  }

  /** Opens the journal and starts the deliveries. */
  async start(): Promise<void> {
    try {
      await this.journal.open();
      for (const w of this.workers) await w.start();
    } catch (e) {
      this.markStarted(false);
      throw e;
    }
    this.journal.onAppend(() => {
      for (const w of this.workers) w.notify();
    });
    this.pruneTimer = setInterval(() => void this.prune(), PRUNE_EVERY_MS);
    this.pruneTimer.unref();
    this.markStarted(true);
  }

  /** Journals events; resolves once they are durable, so the caller may then answer its client. */
  async emit(events: NewEvent | NewEvent[]): Promise<void> {
    const list = (Array.isArray(events) ? events : [events]).filter((e) => e.type !== 'pull' || this.keepsPull(e));
    if (list.length === 0) return;
    // A producer that runs before the server is ready (a mirror job's first run) waits for the journal.
    if (!(await this.started)) throw new Error('events: the journal could not be opened');
    await this.journal.append(list);
    this.metrics.journaled.inc(list.length);
  }

  /**
   * Pulls outnumber every other event, and most endpoints ignore them (Distribution users set `ignore:
   * actions: [pull]`): unless `journal.pulls` is `all`, a pull is journaled only when an endpoint would send it.
   */
  private keepsPull(e: NewEvent): boolean {
    if (this.config.journal.pulls === 'all') return true;
    const event = { ...e, seq: -1 };
    return this.workers.some((w) => w.wants(event));
  }

  /** Removes events past the retention that every endpoint has had. */
  async prune(): Promise<void> {
    const before = Date.now() - parseDuration(this.config.journal.retention);
    const upTo = this.workers.length ? Math.min(...this.workers.map((w) => w.state.cursor)) : this.journal.lastSeq();
    await this.journal.prune(before, upTo).catch((e: unknown) => {
      this.log.warn({ err: (e as Error).message }, 'event journal prune failed');
    });
  }

  /** Stops the deliveries and writes their cursors. */
  async close(): Promise<void> {
    clearInterval(this.pruneTimer);
    await Promise.all(this.workers.map((w) => w.stop()));
    await this.journal.close();
  }
}
