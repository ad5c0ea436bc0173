import type { FastifyInstance } from 'fastify';
import { Notifier } from '../events/notifier.js';
import type { RegistryContext } from './context.js';
import { isDigest } from '../oci/digest.js';
import { emitAfterResponse, emitDetached } from './events.js';
import { installEventsApi } from './events-api.js';

/** The user name of a Basic authorization header (never the password), for a failed login's event. */
function basicUser(header: string | undefined): string | undefined {
  if (!header || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon > 0 ? decoded.slice(0, Math.min(colon, 200)) : undefined;
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
  // What the cache let in and what it refused, with the flow rule that decided.
  ctx.cache?.observeWith((r) => {
    const refused = r.decision === 'denied';
    const [reference, digest] = r.reference.split('@') as [string, string | undefined];
    const named = isDigest(reference) ? { digest: reference } : { tag: reference };
    const target = { repository: r.repository, ...named, ...(digest ? { digest } : {}) };
    const data = { reason: r.reason, ...(r.rule ? { rule: r.rule } : {}), address: r.address };
    emitDetached(ctx, app.log, { type: refused ? 'cache.refused' : 'cache.fill', target, data }, r.principal);
  });
  // Failed logins and rate limits: a 401 to a request that carried credentials, or a 429.
  app.addHook('onResponse', async (req, reply) => {
    const status = reply.statusCode;
    const auth = req.headers.authorization;
    if (!((status === 401 && auth) || status === 429)) return;
    const data: Record<string, unknown> = { status, ...(req.refusal ? { reason: req.refusal.message.slice(0, 500) } : {}) };
    const user = basicUser(auth);
    if (user) data['user'] = user;
    emitAfterResponse(ctx, req, { type: 'login.failed', target: {}, data });
  });
  app.addHook('onClose', async () => notifier.close());
}
