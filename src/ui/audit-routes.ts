import type { FastifyInstance } from 'fastify';
import type { RegistryContext } from '../registry/context.js';
import type { Admins } from './admin.js';
import { badRequest, json, route, textParam } from './api-reply.js';
import { type AuditFilter, matchesAudit, readAuditTail } from './audit-read.js';
import { pageOf, parseListQuery } from './list-query.js';

/** A time filter: an ISO 8601 date or date and time. */
function timeParam(q: Record<string, unknown>, key: string): number | undefined {
  const v = textParam(q, key, 40);
  if (v === undefined) return undefined;
  const t = /^\d{4}-\d\d-\d\d([T ][\d:.]+(Z|[+-]\d\d:?\d\d)?)?$/.test(v) ? Date.parse(v) : Number.NaN;
  if (Number.isNaN(t)) badRequest(`${key}= must be a date or time such as 2026-12-07T18:00:00Z`);
  return t;
}

/** The filters of an audit search, validated. */
function filterOf(q: Record<string, unknown>): AuditFilter {
  const f: AuditFilter = {};
  const user = textParam(q, 'user');
  if (user !== undefined) f.user = user;
  const action = textParam(q, 'action', 64);
  if (action !== undefined) {
    if (!/^[a-z][a-z.,]*$/.test(action)) badRequest('action= must be an action such as pull, push, delete or login');
    f.action = action;
  }
  const repository = textParam(q, 'repository');
  if (repository !== undefined) f.repository = repository.toLowerCase();
  const decision = textParam(q, 'decision', 10);
  if (decision !== undefined) {
    if (decision !== 'allowed' && decision !== 'denied') badRequest('decision= must be allowed or denied');
    f.decision = decision;
  }
  const since = timeParam(q, 'since');
  if (since !== undefined) f.since = since;
  const until = timeParam(q, 'until');
  if (until !== undefined) f.until = until;
  return f;
}

/**
 * `GET /api/v1/audit` for administrators (`ui.admins`): the audit log, newest first, filtered by user, action,
 * repository, decision and time and paged on the server. Only a log kept in a file (`audit.path`) can be read.
 */
export function registerAuditRoutes(app: FastifyInstance, ctx: RegistryContext, admins: Admins): void {
  app.get(
    '/api/v1/audit',
    route(async (req, reply) => {
      await admins.require(req, 'audit');
      const q = req.query as Record<string, unknown>;
      const filter = filterOf(q);
      const lq = parseListQuery(q, ['time']);
      const audit = ctx.config.audit;
      const path = audit?.path;
      if (!audit?.enabled || !path || path === '-' || path === 'stdout') {
        json(reply, {
          kept: false,
          why: audit?.enabled ? 'the audit log goes to stdout (audit.path)' : 'the audit log is off (audit.enabled)',
          items: [],
          page: lq.page,
          n: lq.n,
          total: 0,
        });
        return;
      }
      const { records, truncated } = await readAuditTail(path);
      let rows = records.filter((r) => matchesAudit(r, filter));
      // Newest first unless asked for `order=asc`.
      if (textParam(q, 'order') === 'asc') rows = rows.reverse();
      json(reply, { kept: true, truncated, ...pageOf(rows, lq) });
    }),
  );
}
