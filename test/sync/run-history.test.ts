import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type JobState, type RunSummary, RUN_LIST_MAX, RUNS_KEPT, recordRun } from '../../src/sync/state.js';

function run(i: number, refused: number): RunSummary {
  return {
    job: 'j',
    startedAt: new Date(i * 1000).toISOString(),
    finishedAt: new Date(i * 1000 + 1).toISOString(),
    dryRun: false,
    ok: true,
    copied: [],
    moved: [],
    unchanged: 0,
    pruned: [],
    refused: Array.from({ length: refused }, (_, k) => ({ image: `a:${k}`, reason: 'no' })),
    errors: [],
    requests: {},
  };
}

test('a job keeps its last runs newest first, bounded in runs and in names per run; the last run keeps all', () => {
  const state: JobState = { tags: {} };
  for (let i = 0; i < RUNS_KEPT + 5; i++) recordRun(state, run(i, i === RUNS_KEPT + 4 ? RUN_LIST_MAX + 50 : 1));
  assert.equal(state.runs?.length, RUNS_KEPT);
  assert.equal(state.runs?.[0]?.startedAt, new Date((RUNS_KEPT + 4) * 1000).toISOString());
  assert.equal(state.runs?.at(-1)?.startedAt, new Date(5 * 1000).toISOString());
  assert.equal(state.runs?.[0]?.refused.length, RUN_LIST_MAX);
  assert.equal(state.lastRun?.refused.length, RUN_LIST_MAX + 50);
});
