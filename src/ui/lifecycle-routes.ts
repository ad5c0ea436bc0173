import type { FastifyInstance } from 'fastify';
import type { LifecycleReader } from './lifecycle-reader.js';
import { OciError } from '../oci/errors.js';
import type { RegistryContext } from '../registry/context.js';
import type { Admins } from './admin.js';
import { json, route, textParam } from './api-reply.js';
import { pageOf, parseListQuery } from './list-query.js';

/** The most tags one repository row lists per verdict; the counts are whole. */
const TAGS_LISTED = 200;

/** The lifecycle reader, loaded on first use; undefined when the config asks for no lifecycle. */
function readerOf(ctx: RegistryContext): () => Promise<LifecycleReader | undefined> {
  let reader: Promise<LifecycleReader | undefined> | undefined;
  return () => (reader ??= import('./lifecycle-reader.js').then((m) => m.lifecycleReader(ctx)));
}

/**
 * `GET /api/v1/lifecycle`: bytes per repository and, per tag, what retention or eviction deletes at the next
 * collection and why, as the collector would judge now. Only repositories the caller may pull are listed or
 * counted; how much of a repository is shared with others is told to administrators only, since the others
 * may be hidden from the caller.
 */
export function registerLifecycleRoutes(app: FastifyInstance, ctx: RegistryContext, admins: Admins): void {
  const lifecycle = readerOf(ctx);
  app.get(
    '/api/v1/lifecycle',
    route(async (req, reply) => {
      const reader = await lifecycle();
      if (!reader)
        throw new OciError('UNSUPPORTED', 'no retention rules or cache eviction are configured', undefined, 404);
      const q = req.query as Record<string, unknown>;
      const lq = parseListQuery(q, ['size']);
      const { admin } = await admins.caller(req);
      const reading = await reader.get();
      const names = reading.usage.map((u) => u.repository);
      const visible = new Set(ctx.catalogFilter ? await ctx.catalogFilter(req, names) : names);
      let rows = reading.usage.filter((u) => visible.has(u.repository));
      if (lq.q) rows = rows.filter((u) => u.repository.toLowerCase().includes(lq.q));
      // Largest first unless asked for `order=asc`.
      if (textParam(q, 'order') === 'asc') rows = rows.slice().reverse();
      const page = pageOf(rows, lq);
      const items = page.items.map((u) => {
        const verdicts = reading.verdicts.get(u.repository) ?? [];
        const deleting = verdicts.filter((v) => !v.kept);
        return {
          repository: u.repository,
          bytes: u.bytes,
          ...(admin ? { exclusive: u.exclusive, shared: u.shared } : {}),
          governed: verdicts.length > 0,
          kept: verdicts.length - deleting.length,
          deleting: deleting.slice(0, TAGS_LISTED).map((v) => ({ tag: v.tag, digest: v.digest, reason: v.reason })),
          keptBy: verdicts
            .filter((v) => v.kept)
            .slice(0, TAGS_LISTED)
            .map((v) => ({ tag: v.tag, reason: v.reason })),
        };
      });
      json(reply, { ...page, items, readAt: new Date(reading.at).toISOString() });
    }),
  );
}
