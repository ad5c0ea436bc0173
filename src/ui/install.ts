import type { FastifyInstance } from 'fastify';
import type { AccessControl } from '../auth/access-control.js';
import type { RegistryContext } from '../registry/context.js';
import { matchEndpoint } from '../registry/paths.js';
import { Admins } from './admin.js';
import { json, route } from './api-reply.js';
import { registerApiRoutes } from './api-routes.js';
import { registerAuditRoutes } from './audit-routes.js';
import { explainFor } from './explain.js';
import { registerJobRoutes } from './jobs-routes.js';
import { lifecycleConfigured } from '../config/lifecycle-configured.js';
import { registerLifecycleRoutes } from './lifecycle-routes.js';
import { registerPolicyExplainRoutes } from './policy-explain-routes.js';
import { RepositoryKinds } from './repo-kind.js';
import { registerSessionRoutes } from './session.js';
import { TrustViews } from './signatures.js';
import { registerStaticRoutes, securityHeaders } from './static-routes.js';
import { TagTables } from './tag-table.js';

/**
 * Serves the web UI at `/` and its JSON API under `/api/v1/` unless `ui.enabled` is false. Reads what the
 * registry reads, decided by the same access control; a read-only node serves it too.
 */
export function installUi(
  app: FastifyInstance,
  ctx: RegistryContext,
  access: Promise<AccessControl> | undefined,
): void {
  if (ctx.config.ui?.enabled === false) return;
  const tables = new TagTables(
    ctx.driver,
    (d) => ctx.blobs.read(d),
    (name) => ctx.repo(name),
    async (repo) => {
      await ctx.scanner.refresh(repo);
      return (subject) => ctx.scanner.referrersOf(repo.name, subject).length;
    },
  );
  const kinds = new RepositoryKinds(ctx.config, (name) => ctx.cache?.cacheOf(name));
  app.addHook('onRequest', async (req, reply) => {
    if (req.url === '/' || req.url.startsWith('/ui') || req.url.startsWith('/api/v1/')) securityHeaders(reply);
  });
  registerSessionRoutes(app, access, Boolean(ctx.config.http.tls));
  const api = registerApiRoutes(app, {
    ctx,
    tables,
    kinds,
    trust: new TrustViews(ctx),
    explain: (req, repository, reference) => explainFor(ctx, access, req, repository, reference),
    async mayDelete(req, repository) {
      if (!ctx.deleteEnabled || ctx.readOnly) return false;
      if (!access) return true;
      try {
        const ac = await access;
        return ac.decide((await ac.identify(req)).principal, 'delete', { repository }).allowed;
      } catch {
        return false;
      }
    },
  });
  const admins = new Admins(ctx, access);
  registerJobRoutes(app, ctx, admins);
  registerAuditRoutes(app, ctx, admins);
  registerPolicyExplainRoutes(app, ctx, access, admins);
  registerLifecycleRoutes(app, ctx, admins);
  // Which pages the navigation offers the caller; the routes decide again on every request.
  app.get(
    '/api/v1/pages',
    route(async (req, reply) => {
      const { admin } = await admins.caller(req);
      json(reply, {
        explain: true,
        jobs: admin && (ctx.config.mirrors?.length ?? 0) > 0,
        audit: admin,
        lifecycle: lifecycleConfigured(ctx.config),
      });
    }),
  );
  registerStaticRoutes(app);
  // A push or delete through this process shows on the next page load, not after the tables age out.
  app.addHook('onResponse', async (req, reply) => {
    if (req.endpoint !== 'manifest' || (req.method !== 'PUT' && req.method !== 'DELETE') || reply.statusCode >= 300)
      return;
    try {
      const q = req.url.indexOf('?');
      const ep = matchEndpoint(decodeURIComponent((q >= 0 ? req.url.slice(0, q) : req.url).slice('/v2/'.length)));
      if (ep && 'name' in ep) api.changed(ep.name);
    } catch {
      // The request was answered already; a path that does not parse changed nothing.
    }
  });
}
