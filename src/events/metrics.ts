import { Counter, Gauge, type Registry } from 'prom-client';

/** The events' Prometheus metrics, per endpoint where it matters, in the registry's own metrics registry. */
export class EventMetrics {
  readonly journaled: Counter;
  readonly delivered: Counter<'endpoint'>;
  readonly failures: Counter<'endpoint'>;
  readonly dead: Counter<'endpoint'>;
  readonly dropped: Counter<'endpoint'>;
  readonly pending: Gauge<'endpoint'>;
  readonly journalEvents: Gauge;

  constructor(registry: Registry, pending: () => Record<string, number>, size: () => number) {
    const registers = [registry];
    const perEndpoint = (name: string, help: string) =>
      new Counter({ name, help, labelNames: ['endpoint'], registers });
    this.journaled = new Counter({
      name: 'sluice_events_journaled_total',
      help: 'Events written to the journal',
      registers,
    });
    this.delivered = perEndpoint('sluice_events_delivered_total', 'Events an endpoint accepted');
    this.failures = perEndpoint('sluice_events_delivery_failures_total', 'Failed tries to deliver an event');
    this.dead = perEndpoint('sluice_events_dead_letters_total', 'Events set aside after maxage or maxtries');
    this.dropped = perEndpoint('sluice_events_dropped_total', 'Undelivered events dropped to keep the journal bounded');
    this.pending = new Gauge({
      name: 'sluice_events_pending',
      help: 'Events in the journal an endpoint has not been given yet',
      labelNames: ['endpoint'],
      registers,
      collect() {
        for (const [endpoint, n] of Object.entries(pending())) this.set({ endpoint }, n);
      },
    });
    this.journalEvents = new Gauge({
      name: 'sluice_events_journal_events',
      help: 'Events kept in the journal',
      registers,
      collect() {
        this.set(size());
      },
    });
  }
}
