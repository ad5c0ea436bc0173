// Mirror jobs: a job's name, its runs (one at a time, in the job's order); the helpers beside it send the requests,
// look up repositories, copy images and prune.
import { limiter } from '../async/limit.js';
import { quoteName } from '../oci/name.js';
import { parsePlatform } from '../oci/platform.js';
import { RegistryPool } from '../transport/registry-client.js';
import type { Upstream } from '../upstream/upstreams.js';
import { jobName, type MirrorConfig } from './config.js';
import { type JobContext, newJobContext, type Run, saveState } from './job-context.js';
import type { PlanStep, RunOptions, SyncDeps } from './job-types.js';
import { type Look, look } from './look.js';
import { mirrorImage } from './mirror-image.js';
import { pruneRepository } from './prune.js';
import { literalTags } from './select.js';
import { type JobState, type RunSummary, readState, recordRun } from './state.js';
import { repositoriesOf } from './upstream-requests.js';

// The shapes moved to job-types.ts; importers of this module keep finding them here.
export type { PlanStep, RunOptions, RunProgress, SyncDeps } from './job-types.js';

/** Repositories looked up ahead of the one being acted on. */
const LOOK_AHEAD = 16;
/**
 * Images of one repository copied at once unless the job says (`parallel`): a copy waits on round trips more than
 * on bandwidth.
 */
const IMAGES = 3;

/** A repository a run acts on, or an image entry whose repositories could not be found. */
type Target = { upstream: Upstream; repository: string } | { entry: string; error: Error };

/** Runs mirror jobs: follows upstream tags, HEAD-only when nothing moved, prunes what left the selection. */
export class MirrorJob {
  readonly name: string;
  /** What the job's helpers share (`job-context.ts`): request counts, rate slot, connections, state writes. */
  private readonly ctx: JobContext;
  /** The last run started, so that the next waits for it (they share `pool` and the state file). */
  private previous: Promise<unknown> = Promise.resolve();

  constructor(
    readonly config: MirrorConfig,
    index: number,
    private readonly deps: SyncDeps,
  ) {
    this.name = jobName(config, index);
    this.ctx = newJobContext(this.name, config, deps);
  }

  /** Runs the job once: plans every step, and unless `dryRun`, carries it out. Runs of one job never overlap. */
  run(opts: RunOptions = {}): Promise<RunSummary> {
    const run = this.previous.then(async () => {
      const own = this.deps.pool === undefined;
      this.ctx.pool = this.deps.pool ?? new RegistryPool();
      try {
        return await this.runOnce(opts);
      } finally {
        if (own) await this.ctx.pool.close();
      }
    });
    this.previous = run.catch(() => undefined);
    return run;
  }

  private async runOnce(opts: RunOptions): Promise<RunSummary> {
    const startedAt = new Date();
    const state: JobState = await readState(this.deps.driver, this.name);
    const summary: RunSummary = {
      job: this.name,
      startedAt: startedAt.toISOString(),
      finishedAt: '',
      dryRun: Boolean(opts.dryRun),
      ok: true,
      copied: [],
      moved: [],
      unchanged: 0,
      pruned: [],
      refused: [],
      errors: [],
      requests: this.ctx.requests,
    };
    const progress = opts.progress;
    const step = (s: PlanStep) => {
      opts.onStep?.(s);
      if ((s.tag || s.digest) && s.action !== 'prune' && s.action !== 'copy' && s.action !== 'move')
        progress?.imageDone?.(`${s.image}${s.tag ? `:${s.tag}` : s.digest ? `@${s.digest}` : ''}`, s.action);
    };
    const platforms = this.config.platforms?.map(parsePlatform);
    const run: Run = { state, summary, step, platforms, opts, startedAt, prunes: 0 };
    // Listed tags need no tag list (skopeo's YAML names them); prune does, to tell what vanished upstream.
    const literal = this.config.prune ? undefined : literalTags(this.config.tags);
    // Look ahead, act in order: the tag lists and HEADs of the next repositories go out together (bounded),
    // so a run where nothing moved costs about one round of requests, not one per repository; steps follow
    // in the job's order. The look-ahead is a window, so a long run does not copy digests HEADed long before.
    const targets = await this.targets(summary, step);
    const looks: (Look | undefined)[] = [];
    const lookAhead = (upTo: number): void => {
      for (let j = looks.length; j < Math.min(upTo, targets.length); j++) {
        const t = targets[j]!;
        looks.push('error' in t ? undefined : look(this.ctx, t.upstream, t.repository, literal, progress));
      }
    };
    for (let i = 0; i < targets.length; i++) {
      lookAhead(i + LOOK_AHEAD);
      const t = targets[i]!;
      if ('error' in t) {
        summary.errors.push({ image: t.entry, error: t.error.message });
        step({ action: 'error', image: t.entry, reason: t.error.message });
        continue;
      }
      await this.actOn(run, looks[i]!);
    }
    summary.finishedAt = new Date().toISOString();
    summary.ok = summary.errors.length === 0;
    // Images copied side by side finish in any order; the summary lists them in a stable one.
    summary.copied.sort();
    summary.moved.sort();
    if (!opts.dryRun) {
      recordRun(state, summary);
      await saveState(this.ctx, state);
    }
    return summary;
  }

  /** The repositories the job's image entries name, in order; invalid catalog names are refused on the way. */
  private async targets(summary: RunSummary, step: (s: PlanStep) => void): Promise<Target[]> {
    const targets: Target[] = [];
    for (const entry of this.config.images) {
      try {
        const { upstream, repositories, invalid } = await repositoriesOf(this.ctx, entry);
        for (const repository of repositories) targets.push({ upstream, repository });
        for (const n of invalid) {
          const listed = `the invalid repository name ${quoteName(n)}`;
          const reason = `upstream ${upstream.name} listed ${listed} in its catalog: skipped`;
          summary.refused.push({ image: entry, reason });
          step({ action: 'refused', image: entry, reason });
          this.deps.log.warn({ job: this.name, image: entry }, `sync ${this.name}: ${reason}`);
        }
      } catch (e) {
        targets.push({ entry, error: e as Error });
      }
    }
    return targets;
  }

  /** Acts on one looked-up repository: reports what was refused, mirrors what is allowed, then prunes. */
  private async actOn(run: Run, target: Look): Promise<void> {
    const { summary, step } = run;
    const { image } = target;
    const found = await target.found;
    if (found instanceof Error) {
      summary.errors.push({ image, error: found.message });
      step({ action: 'error', image, reason: found.message });
      return;
    }
    const { allowed, digests } = found;
    for (const r of found.refused) {
      summary.refused.push({
        image: r.tag ? `${image}:${r.tag}` : r.digest ? `${image}@${r.digest}` : image,
        reason: r.reason,
      });
      if (!r.tag && !r.digest)
        this.deps.log.warn({ job: this.name, image }, `sync ${this.name}: ${image}: ${r.reason}`);
      step({ action: 'refused', image, ...r });
    }
    const copies = limiter(this.config.parallel ?? IMAGES);
    await Promise.all(
      allowed.map((w, i) =>
        copies(async () => {
          const digest = digests[i]!;
          try {
            if (digest instanceof Error) throw digest;
            await mirrorImage(this.ctx, run, target, { ...w, digest });
          } catch (e) {
            summary.errors.push({
              image: w.tag ? `${image}:${w.tag}` : `${image}@${w.digest}`,
              error: (e as Error).message,
            });
            step({ action: 'error', image, ...w, reason: (e as Error).message });
          }
        }),
      ),
    );
    await pruneRepository(this.ctx, run, target, found);
  }
}
