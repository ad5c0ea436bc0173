import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { run } from '../helpers/tools.js';

// The tests' command runner: a command that times out is stopped with everything it started, and a descendant
// that outlives the command does not keep the test waiting on the command's output pipes.

/** Running, not gone and not a zombie (an orphan killed here waits for a PID 1 that may never reap it). */
const alive = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

test('a timed-out command is killed with its process group; an orphan holding the pipes does not hang the caller', async () => {
  const started = Date.now();
  const r = await run('bash', ['-c', 'sleep 60 & echo $!; sleep 60'], { timeoutMs: 1_000 });
  assert.equal(r.code, -1);
  assert.match(r.stderr, /killed after 1 s, with its process group/);
  const orphan = Number(r.stdout.trim());
  assert.ok(orphan > 0, r.stdout);
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(alive(orphan), false, 'the background sleep was killed with the group');
  assert.ok(Date.now() - started < 15_000);

  // A command that exits at once, leaving a child that keeps its stdout open: answered within seconds.
  const t0 = Date.now();
  const quick = await run('bash', ['-c', 'sleep 30 & echo $!']);
  const left = Number(quick.stdout.trim());
  try {
    assert.equal(quick.code, 0);
    assert.ok(left > 0, quick.stdout);
    assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
  } finally {
    if (left > 0) process.kill(left, 'SIGKILL');
  }
});
