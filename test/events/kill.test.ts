import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEventReceiver } from '../helpers/event-receiver.js';
import { startSluiceProcess } from '../helpers/sluice-cli.js';
import { digestOf } from '../../src/oci/digest.js';

// Bounded everywhere: each push has a timeout and the pushers stop when told (a port freed by the kill can be
// taken by another test's server on a shared machine, which may answer forever or never); the restart takes
// a fresh port; stopping a child kills it after 15 s; and the whole test has a time limit.
test('kill -9 in the middle of a burst of pushes: every push a client was told succeeded is delivered after the restart', {
  timeout: 150_000,
}, async (t) => {
  const receiver = await startEventReceiver();
  // Nothing is delivered before the crash: every acknowledged push must come out of the journal.
  receiver.mode = { status: 503 };
  t.after(() => receiver.close());
  const dir = await mkdtemp(join(tmpdir(), 'sluice-events-kill-'));
  const config = join(dir, 'config.yml');
  const endpoint = { name: 'ci', url: receiver.url, timeout: '2s', threshold: 0, backoff: '50ms', maxbackoff: '200ms' };
  await writeFile(
    config,
    JSON.stringify({ log: { level: 'silent' }, notifications: { journal: { node: 'crash' }, endpoints: [endpoint] } }),
  );
  const root = join(dir, 'data');
  const first = await startSluiceProcess(root, { config });
  const acknowledged: string[] = [];
  let failed = 0;
  let killed = false;
  const pusher = async (n: number) => {
    while (!killed) {
      const bytes = randomBytes(2000);
      const d = digestOf(bytes);
      try {
        const r = await fetch(`${first.url}/v2/burst/p${n}/blobs/uploads/?digest=${d}`, {
          method: 'POST',
          body: bytes,
          signal: AbortSignal.timeout(10_000),
        });
        // Only the process killed below can have said 201 to this: an answer after the kill is not counted.
        if (r.status === 201 && !killed) acknowledged.push(d);
        await r.arrayBuffer();
      } catch {
        failed++;
        return;
      }
    }
  };
  const burst = Promise.all([0, 1, 2, 3, 4, 5].map(pusher));
  const deadline = Date.now() + 20_000;
  while (acknowledged.length < 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const dying = first.kill();
  // Pushes in flight when the process dies fail; any still looping stop here.
  killed = true;
  await dying;
  await burst;
  assert.ok(acknowledged.length >= 60, `${acknowledged.length} pushes before the kill`);
  assert.ok(failed > 0, 'pushes were still running when the process died');
  receiver.mode = 'ok';
  const second = await startSluiceProcess(root, { config });
  t.after(async () => {
    await second.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const seen = () => new Set(receiver.events().map((e) => (e['target'] as { digest: string }).digest));
  const until = Date.now() + 30_000;
  while (acknowledged.some((d) => !seen().has(d)) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  const missing = acknowledged.filter((d) => !seen().has(d));
  assert.deepEqual(missing, [], `${missing.length} of ${acknowledged.length} acknowledged pushes never delivered`);
});
