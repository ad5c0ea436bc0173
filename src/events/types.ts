/**
 * The event model: one record for what changed in the registry or what Sluice decided. It is journaled
 * as it is and rendered per endpoint, either in Distribution's envelope or as a CloudEvent.
 */

/** What happened. The first five are Distribution's actions too; the rest are decisions only Sluice makes. */
export const EVENT_TYPES = [
  'push',
  'pull',
  'delete',
  'mount',
  'tag.moved',
  'cache.fill',
  'cache.refused',
  'mirror.run',
  'gc.pass',
  'trust.refused',
  'login.failed',
] as const;

/** One of the event types above. */
export type EventType = (typeof EVENT_TYPES)[number];

/** Distribution's `action`: only events Distribution also sends carry one. */
export type DistributionAction = 'push' | 'pull' | 'delete' | 'mount';

/** A manifest's or blob's descriptor as Distribution's `target.references` lists them. */
export interface EventReference {
  mediaType: string;
  size: number;
  digest: string;
}

/** What an event is about: Distribution's `target`, field for field. */
export interface EventTarget {
  mediaType?: string;
  size?: number;
  digest?: string;
  length?: number;
  repository?: string;
  fromRepository?: string;
  url?: string;
  tag?: string;
  references?: EventReference[];
}

/** The request that caused an event: Distribution's `request`. */
export interface EventRequest {
  id: string;
  addr: string;
  host: string;
  method: string;
  useragent: string;
}

/** One event as the journal holds it. `seq` orders events of one node; `id` is what consumers deduplicate on. */
export interface RegistryEvent {
  id: string;
  seq: number;
  /** ISO 8601 with milliseconds. */
  timestamp: string;
  type: EventType;
  action?: DistributionAction;
  target: EventTarget;
  request?: EventRequest;
  actor: { name?: string };
  source: { addr: string; instanceID: string };
  /** Sluice's own details: the rule that refused, the tag's previous digest, a mirror run's or a collection's counts. */
  data?: Record<string, unknown>;
}

/** An event before the journal numbers it. */
export type NewEvent = Omit<RegistryEvent, 'seq'>;

/** The small interface every producer of events sees: resolves once the event is durable. */
export interface EventSink {
  emit(events: NewEvent | NewEvent[]): Promise<void>;
}
