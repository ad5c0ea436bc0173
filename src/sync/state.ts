import type { Digest } from '../oci/digest.js';
import type { StorageDriver } from '../storage/driver.js';

/** What a mirror job remembers between runs: the upstream digest of every tag it mirrored, and its last run. */
export interface JobState {
  /** `repository:tag` → the upstream digest last copied. */
  tags: Record<string, Digest>;
  lastRun?: RunSummary;
  /** The last runs, newest first (at most RUNS_KEPT, each list cut to RUN_LIST_MAX names), for the web UI. */
  runs?: RunSummary[];
}

/** How many past runs a job's state keeps. */
export const RUNS_KEPT = 20;
/** The most names a kept run lists per outcome; the latest run (`lastRun`) keeps all. */
export const RUN_LIST_MAX = 200;

/** Adds a finished run to the state's history, newest first, bounded in runs and in names per run. */
export function recordRun(state: JobState, summary: RunSummary): void {
  const cut = <T>(xs: T[]): T[] => xs.slice(0, RUN_LIST_MAX);
  const kept: RunSummary = {
    ...summary,
    copied: cut(summary.copied),
    moved: cut(summary.moved),
    pruned: cut(summary.pruned),
    refused: cut(summary.refused),
    errors: cut(summary.errors),
  };
  state.lastRun = summary;
  state.runs = [kept, ...(state.runs ?? [])].slice(0, RUNS_KEPT);
}

/** One run of a job, as `sluice sync status` shows it. */
export interface RunSummary {
  job: string;
  startedAt: string;
  finishedAt: string;
  dryRun: boolean;
  ok: boolean;
  copied: string[];
  moved: string[];
  unchanged: number;
  pruned: string[];
  refused: { image: string; reason: string }[];
  errors: { image: string; error: string }[];
  /** Requests the job itself sent upstream, by method (the copy engine's GETs of new content not included). */
  requests: Record<string, number>;
}

/** How many images a run copied, moved, left, pruned, refused and failed: its event's and the UI's counts. */
export function runCounts(s: RunSummary): Record<string, number> {
  return {
    copied: s.copied.length,
    moved: s.moved.length,
    unchanged: s.unchanged,
    pruned: s.pruned.length,
    refused: s.refused.length,
    errors: s.errors.length,
  };
}

// Beside Distribution's `blobs` and `repositories`, under a `_`-prefixed folder that nothing of Distribution reads.
function statePath(job: string): string {
  return `docker/registry/v2/_sluice/sync/${job}.json`;
}

/** Reads a job's state from storage (empty when it never ran). */
export async function readState(driver: StorageDriver, job: string): Promise<JobState> {
  const b = await driver.getContent(statePath(job));
  if (!b) return { tags: {} };
  try {
    const s = JSON.parse(b.toString('utf8')) as JobState;
    return {
      tags: s.tags ?? {},
      ...(s.lastRun ? { lastRun: s.lastRun } : {}),
      ...(Array.isArray(s.runs) ? { runs: s.runs } : {}),
    };
  } catch {
    return { tags: {} };
  }
}

/** Writes a job's state (atomically: the driver renames into place). */
export async function writeState(driver: StorageDriver, job: string, state: JobState): Promise<void> {
  await driver.putContent(statePath(job), Buffer.from(JSON.stringify(state, null, 1)));
}
