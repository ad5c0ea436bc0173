import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeImage, writeOciLayout, type TestImage } from '../helpers/images.js';
import { podmanIn, scratch, skopeoMay } from '../helpers/clients.js';
import type { RunResult } from '../helpers/tools.js';
import { startRegistry } from '../helpers/registry.js';
import { needTools } from '../helpers/tools.js';

/** How long the pushers run while the collector works: bounded in time and in count. */
const LOOP_MS = 30_000;
const MAX_PUSHES = 50;
const REPOS = ['loop/a', 'loop/b'];
const TAGS = ['t0', 't1', 't2'];

test('skopeo and podman pushing images that share layers while GC runs every second leave every tag pulling whole', {
  timeout: 240_000,
}, async (t) => {
  if (!needTools(t, 'skopeo', 'podman')) return;
  const reg = await startRegistry({
    storage: { gc: { enabled: true, interval: '1s', grace: '5s', deleteuntagged: true, collector: true } },
  });
  t.after(() => reg.close());
  const work = await scratch('sluice-gc-loop-');
  t.after(() => work.cleanup());
  const base = { 'base/os-release': 'ID=sluice-gc-test\n', 'base/big': Buffer.alloc(64 * 1024, 7) };
  const pushed: TestImage[] = [];
  const pushErrors: string[] = [];
  const ends = Date.now() + LOOP_MS;
  let n = 0;
  const podman = podmanIn(join(work.dir, 'podman'));
  /** One push of an OCI layout by skopeo (worker 1) or by podman from its own storage (worker 2). */
  const byClient = { skopeo: 0, podman: 0 };
  const push = async (worker: number, dir: string, dest: string): Promise<RunResult> => {
    byClient[worker === 1 ? 'skopeo' : 'podman']++;
    if (worker === 1) return skopeoMay(['copy', '--dest-tls-verify=false', `oci:${dir}:x`, dest]);
    const pulled = await podman.run(['pull', '-q', `oci:${dir}:x`]);
    const id = pulled.stdout.trim().split('\n').pop()!;
    return podman.runMay(['push', '--tls-verify=false', id, dest]);
  };
  const pusher = async (worker: number): Promise<void> => {
    while (Date.now() < ends && n < MAX_PUSHES) {
      const i = n++;
      // Every third push sends an image pushed before again (its blobs may be candidates or being deleted).
      const again = i % 3 === 2 && pushed.length > 0 ? pushed[i % pushed.length] : undefined;
      const img =
        again ??
        (await makeImage({ layers: [base, { [`top-${i}`]: `push ${i} by ${worker}\n` }], label: `loop ${i}` }));
      if (!again) pushed.push(img);
      const dir = join(work.dir, `layout-${i}`);
      await writeOciLayout(dir, [{ tag: 'x', image: img }]);
      const dest = `docker://${reg.host}/${REPOS[i % REPOS.length]}:${TAGS[i % TAGS.length]}`;
      const r = await push(worker, dir, dest);
      // A push that lost a race with the sweep is refused (MANIFEST_BLOB_UNKNOWN); the client pushes again.
      if (r.code !== 0) {
        pushErrors.push(r.stderr);
        const retry = await push(worker, dir, dest);
        assert.equal(retry.code, 0, `push ${i} failed twice: ${retry.stderr}`);
      }
    }
  };
  await Promise.all([pusher(1), pusher(2)]);
  for (const e of pushErrors)
    assert.match(e, /MANIFEST_BLOB_UNKNOWN|blob unknown/i, `a push failed for another reason: ${e}`);

  // The collector kept running; wait (generously) until it has reclaimed what the overwritten tags left.
  const deleted = async (): Promise<number> => {
    const m = await reg.ctx.metrics.registry.getSingleMetric('sluice_gc_deleted_objects_total')?.get();
    return (m?.values ?? []).reduce((s, v) => s + v.value, 0);
  };
  for (const until = Date.now() + 120_000; (await deleted()) === 0 && Date.now() < until; )
    await new Promise((r) => setTimeout(r, 500));
  assert.ok((await deleted()) > 0, 'the collector deleted nothing: the test proved nothing');

  let pulls = 0;
  for (const repo of REPOS) {
    for (const tag of TAGS) {
      const out = join(work.dir, `pull-${repo.replace('/', '-')}-${tag}`);
      const r = await skopeoMay([
        'copy',
        '--src-tls-verify=false',
        `docker://${reg.host}/${repo}:${tag}`,
        `oci:${out}:x`,
      ]);
      if (r.stderr.includes('manifest unknown')) continue;
      assert.equal(r.code, 0, `pull of ${repo}:${tag} failed: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /blob unknown/i);
      // podman pulls the first two as well, into its own storage (every blob fetched and checked).
      if (pulls < 2) {
        const p = await podman.runMay(['pull', '--tls-verify=false', `${reg.host}/${repo}:${tag}`]);
        assert.equal(p.code, 0, `podman pull of ${repo}:${tag} failed: ${p.stderr}`);
      }
      pulls++;
    }
  }
  assert.ok(pulls >= 2, `only ${pulls} tags pulled`);
  assert.ok(byClient.skopeo > 0 && byClient.podman > 0, JSON.stringify(byClient));
  t.diagnostic(
    `${n} pushes (skopeo ${byClient.skopeo}, podman ${byClient.podman} with retries), ${pushErrors.length} refused and pushed again, ${await deleted()} objects collected, ${pulls} tags pulled whole`,
  );
});
