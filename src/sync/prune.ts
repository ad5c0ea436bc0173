// Prune: untags at a local destination what left the job's selection or vanished upstream, up to `maxprune`.
import { isRepositoryName, type RepositoryName } from '../oci/name.js';
import { backupPattern } from './backup.js';
import type { JobContext, Run } from './job-context.js';
import type { Found, Look } from './look.js';

/** Prunes one repository's destination against its selection (when the job prunes and writes to local storage). */
export async function pruneRepository(
  ctx: JobContext,
  run: Run,
  target: Pick<Look, 'repository' | 'image' | 'dest'>,
  found: Pick<Found, 'selected' | 'upstreamTags'>,
): Promise<void> {
  const { repository, image, dest } = target;
  const { state, summary, step, opts } = run;
  // A destination outside the name grammar (a prefix that makes it too long) has nothing stored to prune.
  if (!ctx.config.prune || ctx.config.to || !isRepositoryName(dest)) return;
  const repo = ctx.deps.repo(dest as RepositoryName);
  const keep = new Set(found.selected);
  // Backups of moved tags are the job's own, kept until someone deletes them.
  const backups = ctx.config.backup ? backupPattern(ctx.config.backup) : undefined;
  for (const t of await repo.tags()) {
    if (keep.has(t) || /^sha256-/.test(t) || backups?.test(t)) continue;
    const why = found.upstreamTags.includes(t) ? 'left the selection' : 'vanished upstream';
    if (run.prunes >= ctx.config.maxprune) {
      step({
        action: 'prune',
        image,
        tag: t,
        reason: `would be pruned (${why}) but maxprune ${ctx.config.maxprune} is reached`,
      });
      continue;
    }
    run.prunes++;
    step({ action: 'prune', image, tag: t, destination: dest, reason: why });
    if (!opts.dryRun) {
      await repo.untag(t);
      delete state.tags[`${repository}:${t}`];
      ctx.deps.changed?.();
    }
    summary.pruned.push(`${dest}:${t}`);
  }
}
