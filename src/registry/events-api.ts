import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { OciError } from '../oci/errors.js';
import { parseSince } from '../events/status.js';
import type { RegistryEvent } from '../events/types.js';
import { cursorAt, formatCursor, nodeJournals, parseCursor, readMerged } from '../events/merged.js';
import type { EventsCursor, NodeEvent } from '../events/merged.js';
import type { RegistryContext } from './context.js';
import { sendError, toOciError } from './errors.js';

/** The most events one answer holds; `next` says where the following page starts. */
const PAGE_MAX = 1000;
/** Journal events looked at for one answer, so a caller who may see little cannot make one request read it all. */
const SCAN_MAX = 20_000;

/**
 * `GET /api/v1/events?since=&after=&limit=`: the journals of every node on this storage, merged oldest first,
 * for consumers that poll (and the UI). `next` is a cursor (`node:seq,…`) that says where the reader
 * stands in each node's journal, so events a node writes late are still given, once.
 * Authorised as the registry API is: the caller must pass `/v2/`'s check, and sees only events of
 * repositories it may list (the catalog filter); registry-wide events (failed logins, mirror runs) only
 * when there is no access control.
 */
export function installEventsApi(app: FastifyInstance, ctx: RegistryContext): void {
  app.get('/api/v1/events', async (req: FastifyRequest, reply: FastifyReply) => {
    try {
      const events = ctx.events;
      if (!events)
        throw new OciError('UNSUPPORTED', 'no notifications are configured on this registry', undefined, 404);
      await ctx.authorize(req, { actions: [] });
      const q = req.query as Record<string, string | undefined>;
      const limit = Math.min(PAGE_MAX, Math.max(1, Number(q['limit'] ?? 100) || 100));
      // Every node's journal on this storage (on S3, each node of a cluster journals its own), merged by time.
      const journals = await nodeJournals(ctx.driver, events.journal);
      let cursor: EventsCursor = new Map();
      if (q['after'] !== undefined) {
        try {
          cursor = parseCursor(q['after'], events.journal.node);
        } catch (e) {
          const why = `after=: ${(e as Error).message} (pass the next of an earlier answer)`;
          throw new OciError('UNSUPPORTED', why, undefined, 400);
        }
      } else if (q['since'] !== undefined) {
        let since: number;
        try {
          since = parseSince(q['since']);
        } catch (e) {
          throw new OciError('UNSUPPORTED', `since=: ${(e as Error).message}`, undefined, 400);
        }
        cursor = cursorAt(journals, since);
      }
      const out: NodeEvent[] = [];
      let scanned = 0;
      while (out.length < limit && scanned < SCAN_MAX) {
        const batch = await readMerged(journals, cursor, 500);
        if (batch.length === 0) break;
        scanned += batch.length;
        const visible = await visibleRepositories(ctx, req, batch);
        for (const e of batch) {
          cursor.set(e.node, e.seq);
          const repo = e.target.repository;
          if (repo === undefined ? visible.all : visible.names.has(repo)) out.push(e);
          if (out.length >= limit) break;
        }
      }
      const next = formatCursor(cursor);
      return reply.header('content-type', 'application/json').send(JSON.stringify({ events: out, next }));
    } catch (e) {
      return sendError(reply, toOciError(e), false);
    }
  });
}

/** The repositories of a batch the caller may pull; `all` when there is no access control. */
async function visibleRepositories(
  ctx: RegistryContext,
  req: FastifyRequest,
  batch: RegistryEvent[],
): Promise<{ all: boolean; names: Set<string> }> {
  const names = [...new Set(batch.map((e) => e.target.repository).filter((r): r is string => r !== undefined))];
  if (!ctx.catalogFilter) return { all: true, names: new Set(names) };
  return { all: false, names: new Set(await ctx.catalogFilter(req, names)) };
}
