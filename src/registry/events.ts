import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyRequest } from 'fastify';
import type { Manifest } from '../oci/manifest.js';
import type {
  EventReference,
  EventRequest,
  EventTarget,
  EventType,
  NewEvent,
  DistributionAction,
} from '../events/types.js';
import type { RegistryContext } from './context.js';

/** What a route knows of an event; the request, actor, source, id and time are filled in here. */
export interface EventDraft {
  type: EventType;
  action?: DistributionAction;
  target: EventTarget;
  data?: Record<string, unknown>;
}

const requestIds = new WeakMap<FastifyRequest, string>();
const HOST = hostname();

/** Distribution's `request` record: one id per request, shared by all its events. */
function requestRecord(req: FastifyRequest): EventRequest {
  let id = requestIds.get(req);
  if (!id) {
    id = randomUUID();
    requestIds.set(req, id);
  }
  const ua = req.headers['user-agent'];
  return {
    id,
    addr: `${req.ip}:${req.raw.socket?.remotePort ?? 0}`,
    host: req.headers.host ?? '',
    method: req.method,
    useragent: typeof ua === 'string' ? ua.slice(0, 1000) : '',
  };
}

/** The absolute URL of a manifest or blob, as Distribution builds it from the request's host. */
export function eventURL(req: FastifyRequest, repository: string, kind: 'manifests' | 'blobs', digest: string): string {
  return `${req.protocol}://${req.headers.host ?? ''}/v2/${repository}/${kind}/${digest}`;
}

/** A manifest's references (config and layers, or an index's manifests), as Distribution lists them. */
export function manifestReferences(m: Manifest): EventReference[] {
  const list = m.kind === 'image' ? [m.config, ...m.layers] : m.manifests;
  return list.map((d) => ({ mediaType: d.mediaType, size: d.size, digest: d.digest }));
}

/**
 * Journals the events a request caused, before it is answered: resolves once they are durable. Nothing
 * happens (and nothing is awaited) when no notifications are configured.
 */
export async function emitForRequest(ctx: RegistryContext, req: FastifyRequest, drafts: EventDraft[]): Promise<void> {
  const events = ctx.events;
  if (!events || drafts.length === 0) return;
  const principal = req.auditAccess?.principal;
  const actor = principal && principal !== 'anonymous' ? { name: principal } : {};
  const request = requestRecord(req);
  const source = { addr: `${HOST}:${req.raw.socket?.localPort ?? 0}`, instanceID: events.instanceID };
  const timestamp = new Date().toISOString();
  const list: NewEvent[] = drafts.map((d) => ({ id: randomUUID(), timestamp, ...d, request, actor, source }));
  await events.emit(list);
}

/** A journal record of an event with no request record: who acted, and where this node is. */
function detachedEvent(draft: EventDraft, actor: string | undefined, instanceID: string): NewEvent {
  return {
    id: randomUUID(),
    timestamp: new Date().toISOString(),
    ...draft,
    actor: actor && actor !== 'anonymous' && actor !== 'unknown' ? { name: actor } : {},
    source: { addr: HOST, instanceID },
  };
}

/**
 * Journals a decision a request caused where only who asked is known (a cache fill or refusal): resolves
 * once durable, and the caller answers its client only after that, as a push does.
 */
export async function emitForDecision(ctx: RegistryContext, draft: EventDraft, actor?: string): Promise<void> {
  const events = ctx.events;
  if (!events) return;
  await events.emit(detachedEvent(draft, actor, events.instanceID));
}

/** Journals an event no request caused (a mirror run, a collection pass): failures are logged. */
export function emitDetached(
  ctx: RegistryContext,
  log: { warn(o: object, msg: string): void },
  draft: EventDraft,
): void {
  const events = ctx.events;
  if (!events) return;
  events.emit(detachedEvent(draft, undefined, events.instanceID)).catch((e: unknown) => {
    log.warn({ err: (e as Error).message, type: draft.type }, 'event not journaled');
  });
}
