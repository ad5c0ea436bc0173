import type { FastifyInstance } from 'fastify';
import { OciError } from '../oci/errors.js';
import type { RegistryContext } from '../registry/context.js';
import type { MirrorConfig } from '../sync/config.js';
import { jobName } from '../sync/config.js';
import type { Admins } from './admin.js';
import { json, route } from './api-reply.js';
import { pageOf, parseListQuery } from './list-query.js';

/** A job name as `mirrors[].name` allows it (and as `jobName` makes one), checked before it names a state file. */
const JOB_NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;

/** The configured job a path parameter names, or NAME_UNKNOWN (the same for a bad name as for an absent one). */
function jobOf(ctx: RegistryContext, params: unknown): { name: string; config: MirrorConfig } {
  const name = (params as { name?: unknown }).name;
  const jobs = (ctx.config.mirrors ?? []).map((m, i) => ({ name: jobName(m, i), config: m }));
  const job = typeof name === 'string' && JOB_NAME.test(name) ? jobs.find((j) => j.name === name) : undefined;
  if (!job) throw new OciError('NAME_UNKNOWN', 'no mirror job of that name is configured', undefined, 404);
  return job;
}

/**
 * The mirror jobs under `/api/v1/jobs` for administrators (`ui.admins`): each job with its schedule, next run
 * and last run; a job's past runs with what they copied, followed, pruned and refused and why; and starting a
 * run now (a state-changing request: the session's CSRF token is checked before it gets here).
 */
export function registerJobRoutes(app: FastifyInstance, ctx: RegistryContext, admins: Admins): void {
  app.get(
    '/api/v1/jobs',
    route(async (req, reply) => {
      await admins.require(req, 'jobs');
      const scheduler = ctx.mirrors;
      const items = await Promise.all(
        (ctx.config.mirrors ?? []).map(async (m, i) => {
          const name = jobName(m, i);
          const { state, counts } = await readJobState(ctx, name);
          const next = scheduler?.nextRun(name);
          const last = state.lastRun;
          return {
            name,
            images: m.images,
            ...(m.tags ? { tags: m.tags } : {}),
            schedule: m.cron ? { cron: m.cron } : m.every ? { every: m.every } : { manual: true },
            ...(m.jitter ? { jitter: m.jitter } : {}),
            ...(m.prune ? { prune: true } : {}),
            ...(next ? { nextRun: next.toISOString() } : {}),
            running: scheduler?.isRunning(name) ?? false,
            runs: state.runs?.length ?? (last ? 1 : 0),
            ...(last
              ? {
                  lastRun: {
                    startedAt: last.startedAt,
                    finishedAt: last.finishedAt,
                    ok: last.ok,
                    counts: counts(last),
                  },
                }
              : {}),
          };
        }),
      );
      // Runs start only where the scheduler runs: a read-only node shows the jobs but cannot start them.
      const runnable = Boolean(scheduler);
      json(reply, {
        items,
        mayRun: runnable,
        ...(runnable ? {} : { why: ctx.readOnly ? 'this registry is read-only' : 'no mirror jobs run here' }),
      });
    }),
  );

  app.get(
    '/api/v1/jobs/:name/runs',
    route(async (req, reply) => {
      await admins.require(req, 'jobs');
      const job = jobOf(ctx, req.params);
      const lq = parseListQuery(req.query as Record<string, unknown>, ['started']);
      const { state, counts } = await readJobState(ctx, job.name);
      // A state written before run history was kept has its last run only.
      const runs = (state.runs ?? (state.lastRun ? [state.lastRun] : [])).map((r) => ({ ...r, counts: counts(r) }));
      const page = pageOf(lq.desc ? runs.slice().reverse() : runs, lq);
      json(reply, { job: job.name, running: ctx.mirrors?.isRunning(job.name) ?? false, ...page });
    }),
  );

  app.post(
    '/api/v1/jobs/:name/run',
    route(async (req, reply) => {
      await admins.require(req, 'jobs.run');
      const job = jobOf(ctx, req.params);
      const scheduler = ctx.mirrors;
      const mirror = scheduler?.all.find((j) => j.name === job.name);
      if (!scheduler || !mirror)
        throw new OciError(
          'UNSUPPORTED',
          ctx.readOnly ? 'this registry is read-only: its mirror jobs run elsewhere' : 'mirror jobs do not run here',
          undefined,
          409,
        );
      const already = scheduler.isRunning(job.name);
      // When the newest run before this one started, so the page can tell the new one when it is listed.
      const latest = (await readJobState(ctx, job.name)).state.lastRun?.startedAt;
      // The run goes on after the answer; its outcome is in the job's runs (and the log, metrics and events).
      scheduler.runNow(mirror).catch(() => undefined);
      json(reply, { job: job.name, started: !already, ...(latest ? { latest } : {}) }, 202);
    }),
  );
}

/** A job's stored state and how its runs are counted; the module loads on first use, as mirror jobs do. */
async function readJobState(ctx: RegistryContext, name: string) {
  const { readState, runCounts } = await import('../sync/state.js');
  return { state: await readState(ctx.driver, name), counts: runCounts };
}
