import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';
import { accessControlConfigured } from './access.js';
import type { RegistryContext } from './context.js';
import { AccessControl } from '../auth/access-control.js';
import { registerTokenRoutes } from '../auth/token-routes.js';

/**
 * Wires access control into a registry: `/token`, the Authorizer, the catalog filter, the
 * challenge header on 401s and the audit log of writes. Does nothing when nothing is configured.
 */
export function installAccessControl(
  app: FastifyInstance,
  ctx: RegistryContext,
  config: Config,
): Promise<AccessControl> | undefined {
  if (!accessControlConfigured(config)) return undefined;
  const ready = AccessControl.create(config);
  // Keep an unhandled rejection from crashing before `ready()` reports it.
  ready.catch(() => undefined);
  app.addHook('onReady', async () => {
    const ac = await ready;
    if (ac.issuer?.createdKey)
      app.log.info(
        { path: ac.issuer.createdKey },
        'auth.issuer.key did not exist: created a new EC P-256 token signing key there',
      );
    // The cache's fetches and refusals go to the same audit log as the registry's writes and denials.
    const audit = ac.audit;
    if (audit && ctx.cache) ctx.cache.auditTo((r) => audit.write(r));
    const cache = ctx.cache;
    if (cache) ac.nameAliases = (name) => cache.aliases(name);
  });
  ctx.authorize = async (req, access) => (await ready).authorize(req, access);
  ctx.catalogFilter = async (req, names) => (await ready).filterCatalog(req, names);
  ctx.mayPush = async (req, repository) => (await ready).mayPush(req, repository);
  app.addHook('onSend', async (req, reply, payload) => {
    if (reply.statusCode === 401 && req.authChallenge) reply.header('www-authenticate', req.authChallenge);
    if (reply.statusCode === 429 && req.retryAfter !== undefined) reply.header('retry-after', String(req.retryAfter));
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    const ac = await ready;
    const a = req.auditAccess;
    if (!ac.audit || !a) return;
    const write =
      req.method === 'PUT' || req.method === 'DELETE' || (req.method === 'POST' && reply.statusCode === 201);
    if (!write || reply.statusCode >= 400) return;
    ac.audit.write({ ...a, address: req.ip, decision: 'allowed', method: req.method, status: reply.statusCode });
  });
  app.addHook('onClose', async () => {
    // The password-checking workers would otherwise keep a process that closed its server alive.
    const ac = await ready.catch(() => undefined);
    await ac?.close();
  });
  registerTokenRoutes(app, ready);
  return ready;
}
