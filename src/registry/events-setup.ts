import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Notifier } from '../events/notifier.js';
import type { RegistryContext } from './context.js';
import type { CacheAuditRecord } from '../proxy/cache.js';
import { isDigest } from '../oci/digest.js';
import { emitForDecision, emitForRequest, type EventDraft } from './events.js';
import { installEventsApi } from './events-api.js';

/** The user name of a Basic authorization header (never the password), for a failed login's event. */
function basicUser(header: string | undefined): string | undefined {
  if (!header || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon > 0 ? decoded.slice(0, Math.min(colon, 200)) : undefined;
}

/** A cache fill or refusal as an event: the image, the reason, and the flow rule that decided. */
function cacheEvent(r: CacheAuditRecord): EventDraft {
  const refused = r.decision === 'denied';
  const [reference, digest] = r.reference.split('@') as [string, string | undefined];
  const named = isDigest(reference) ? { digest: reference } : { tag: reference };
  const target = { repository: r.repository, ...named, ...(digest ? { digest } : {}) };
  const data = { reason: r.reason, ...(r.rule ? { rule: r.rule } : {}), address: r.address };
  return { type: refused ? 'cache.refused' : 'cache.fill', target, data };
}

/** The token endpoint's path: a refused password grant there carries no Authorization header. */
const TOKEN_PATH = /^\/token(?:\?|$)/;

/** A failed login or a rate limit as an event, or undefined when the answer is neither. */
function loginFailedEvent(req: FastifyRequest, status: number): EventDraft | undefined {
  const auth = req.headers.authorization;
  const login = status === 401 && (auth !== undefined || TOKEN_PATH.test(req.url));
  if (!login && status !== 429) return undefined;
  const reason = req.refusal ? { reason: req.refusal.message.slice(0, 500) } : {};
  const data: Record<string, unknown> = { status, ...reason };
  const user = basicUser(auth) ?? req.loginUser;
  if (user) data['user'] = user.slice(0, 200);
  return { type: 'login.failed', target: {}, data };
}

/**
 * Starts the events journal and its deliveries when `notifications:` is configured: the journal opens
 * before the server answers its first request, and deliveries stop (cursors written) when it closes.
 */
export function installEvents(app: FastifyInstance, ctx: RegistryContext): void {
  const config = ctx.config.notifications;
  if (!config) return;
  if (ctx.readOnly) {
    app.log.warn('notifications: not journaled, this registry is read-only (storage.maintenance.readonly.enabled)');
    return;
  }
  const notifier = new Notifier(config, ctx.driver, ctx.metrics.registry, app.log);
  ctx.events = notifier;
  app.addHook('onReady', async () => notifier.start());
  installEventsApi(app, ctx);
  // What the cache let in and what it refused, with the flow rule that decided: awaited by the cache, so
  // the request that caused it is answered only once the event is durable.
  ctx.cache?.observeWith((r) => emitForDecision(ctx, cacheEvent(r), r.principal));
  // Failed logins and rate limits (a 401 to a request that carried credentials or asked /token for a token,
  // or a 429), journaled in onSend: after the answer is decided, before a byte of it is written.
  // Fastify can run onSend twice for one answer (a handler that returns after sending): one event per request.
  const journaled = new WeakSet<FastifyRequest>();
  app.addHook('onSend', async (req, reply, payload) => {
    const draft = journaled.has(req) ? undefined : loginFailedEvent(req, reply.statusCode);
    if (!draft) return payload;
    journaled.add(req);
    await emitForRequest(ctx, req, [draft]);
    return payload;
  });
  app.addHook('onClose', async () => notifier.close());
}
