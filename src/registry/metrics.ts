import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The registry's Prometheus metrics, in a registry of their own so that servers in one process stay apart. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'sluice_http_requests_total',
    help: 'HTTP requests by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly bytesIn = new Counter({
    name: 'sluice_http_bytes_received_total',
    help: 'Blob and manifest bytes received',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly bytesOut = new Counter({
    name: 'sluice_http_bytes_sent_total',
    help: 'Blob and manifest bytes sent',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly uploadSeconds = new Histogram({
    name: 'sluice_blob_upload_duration_seconds',
    help: 'Time from the start of an upload session to its completion',
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly requestSeconds = new Histogram({
    name: 'sluice_http_request_duration_seconds',
    help: 'Request latency by route',
    labelNames: ['route', 'method'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });

  constructor(withDefaults = true) {
    if (withDefaults) collectDefaultMetrics({ register: this.registry, prefix: 'sluice_' });
  }
}
