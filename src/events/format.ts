import type { EndpointConfig } from './config.js';
import type { RegistryEvent } from './types.js';

/** Distribution's envelope media type (Distribution 3; 2.8 sends the same body as `…events.v1+json`). */
export const ENVELOPE_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v2+json';
/** CloudEvents 1.0, structured content mode, JSON. */
export const CLOUDEVENTS_MEDIA_TYPE = 'application/cloudevents+json';
/** The prefix of Sluice's CloudEvents types: `io.sluice.push`, `io.sluice.cache.refused`, … */
export const CLOUDEVENT_TYPE_PREFIX = 'io.sluice.';

/** One delivery's body and content type. */
export interface Rendered {
  contentType: string;
  body: string;
}

/** An event as Distribution writes it inside its envelope. */
export function distributionEvent(e: RegistryEvent, includeReferences: boolean): Record<string, unknown> {
  const target = { ...e.target };
  if (!includeReferences) delete target.references;
  return {
    id: e.id,
    timestamp: e.timestamp,
    action: e.action,
    target,
    request: e.request,
    actor: e.actor,
    source: e.source,
  };
}

/** `repo:tag@digest`, as much of it as the event knows: the CloudEvent's subject. */
function subjectOf(e: RegistryEvent): string | undefined {
  const t = e.target;
  if (!t.repository) return undefined;
  return `${t.repository}${t.tag ? `:${t.tag}` : ''}${t.digest ? `@${t.digest}` : ''}`;
}

/** An event as a structured CloudEvent 1.0. */
export function cloudEvent(e: RegistryEvent): Record<string, unknown> {
  const subject = subjectOf(e);
  return {
    specversion: '1.0',
    id: e.id,
    source: `sluice://${e.source.addr}`,
    type: `${CLOUDEVENT_TYPE_PREFIX}${e.type}`,
    time: e.timestamp,
    ...(subject ? { subject } : {}),
    datacontenttype: 'application/json',
    data: {
      ...(e.action ? { action: e.action } : {}),
      target: e.target,
      ...(e.request ? { request: e.request } : {}),
      actor: e.actor,
      source: e.source,
      ...(e.data ?? {}),
    },
  };
}

/** The body one endpoint receives for one event. */
export function render(e: RegistryEvent, endpoint: EndpointConfig, includeReferences: boolean): Rendered {
  if (endpoint.format === 'cloudevents')
    return { contentType: CLOUDEVENTS_MEDIA_TYPE, body: JSON.stringify(cloudEvent(e)) };
  return {
    contentType: ENVELOPE_MEDIA_TYPE,
    body: JSON.stringify({ events: [distributionEvent(e, includeReferences)] }),
  };
}
