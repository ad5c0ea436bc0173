// The state a mirror job's helpers share: the job's own (across runs) and one run's (while it is under way).
import { limiter } from '../async/limit.js';
import type { parsePlatform } from '../oci/platform.js';
import { RegistryPool } from '../transport/registry-client.js';
import type { MirrorConfig } from './config.js';
import type { PlanStep, RunOptions, SyncDeps } from './job-types.js';
import { type JobState, type RunSummary, writeState } from './state.js';

/** A run's tag lists and HEADs in flight at once, over all its repositories. */
const LOOKUPS = 16;

/** What a job keeps between runs and lends its helpers: config, dependencies, request counts and connections. */
export interface JobContext {
  readonly name: string;
  readonly config: MirrorConfig;
  readonly deps: SyncDeps;
  /** Requests the job sent upstream, by method (the summary of every run holds this same object). */
  readonly requests: Record<string, number>;
  /** When the next request may go out under the job's `ratelimit.rps`. */
  nextRequestAt: number;
  /** The run's shared connections (set while a run is under way). */
  pool: RegistryPool;
  /** The last state write, so that writes from images copied side by side land in order. */
  saving: Promise<void>;
  /** Bounds the run's tag lists and HEADs together. */
  readonly lookups: <T>(task: () => Promise<T>) => Promise<T>;
}

/** One run under way: the job's state, the summary so far, and how steps are reported. */
export interface Run {
  readonly state: JobState;
  readonly summary: RunSummary;
  readonly step: (s: PlanStep) => void;
  readonly platforms: ReturnType<typeof parsePlatform>[] | undefined;
  readonly opts: RunOptions;
  readonly startedAt: Date;
  /** Tags pruned so far in this run, against `maxprune`. */
  prunes: number;
}

/** A fresh context for a job: no requests counted, no write under way. */
export function newJobContext(name: string, config: MirrorConfig, deps: SyncDeps): JobContext {
  return {
    name,
    config,
    deps,
    requests: {},
    nextRequestAt: 0,
    pool: new RegistryPool(),
    saving: Promise.resolve(),
    lookups: limiter(LOOKUPS),
  };
}

/** Writes the job's state after any write under way (each write holds everything recorded so far). */
export function saveState(ctx: JobContext, state: JobState): Promise<void> {
  const write = ctx.saving.then(() => writeState(ctx.deps.driver, ctx.name, state));
  ctx.saving = write.catch(() => undefined);
  return write;
}
