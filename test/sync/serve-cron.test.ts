import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRegistry } from '../helpers/registry.js';
import { startThrottleProxy } from '../helpers/throttle-proxy.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { startSluiceProcess } from '../helpers/sluice-cli.js';

test('sluice serve runs a cron job (per-second cron) on schedule and never twice at once when a run outlasts the period', async () => {
  const up = await startRegistry();
  const proxy = await startThrottleProxy(up.url);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-sync-cron-'));
  const root = join(dir, 'data');
  try {
    await pushImage(up.url, 'library/app', '1', await makeImage({ label: 'cron' }));
    // Each run's HEAD takes 3 s, longer than the 2 s between cron ticks.
    proxy.delay = { path: /^\/v2\/library\/app\/manifests\/1$/, method: 'HEAD', ms: 3000 };
    const cfg = join(dir, 'config.yml');
    await writeFile(
      cfg,
      [
        `upstreams: {docker.io: {url: "${proxy.url}"}}`,
        'flows: [{images: ["docker.io/library/*"]}]',
        'mirrors:',
        '  - name: cron',
        '    images: [docker.io/library/app]',
        '    tags: {include: ["1"]}',
        "    cron: '*/2 * * * * *'",
        '',
      ].join('\n'),
    );
    const sluice = await startSluiceProcess(root, { config: cfg });
    // Counted from when the server answers, not from the spawn: a loaded machine may take seconds to start Node.
    const started = Date.now();
    try {
      await sleep(11_000);
      const heads = proxy.seen
        .filter((s) => s.method === 'HEAD' && s.path === '/v2/library/app/manifests/1')
        .map((s) => s.startedAt);
      assert.ok(heads.length >= 2, `the job ran ${heads.length} times in 11 s on a 2 s cron`);
      assert.ok(heads[0]! - started < 6000, `first run ${heads[0]! - started} ms after the server was ready`);
      assert.equal(proxy.maxInFlight('HEAD', /manifests\/1$/), 1, 'two runs of the job at once');
      for (let i = 1; i < heads.length; i++)
        assert.ok(heads[i]! - heads[i - 1]! >= 2900, `runs ${heads[i]! - heads[i - 1]!} ms apart while one takes 3 s`);
      // A per-second cron: runs start on even seconds (a tick that found the job running was skipped, not queued).
      for (const at of heads) assert.ok(at % 2000 < 1000, `a run started ${at % 2000} ms after an even second`);
      // The job's runs share the server's connections: one ping for the server's life, not one per run.
      assert.equal(
        proxy.seen.filter((x) => x.method === 'GET' && x.path === '/v2/').length,
        1,
        proxy.seen.map((x) => `${x.method} ${x.path}`).join('\n'),
      );
      const metrics = await (await fetch(`${sluice.url}/metrics`)).text();
      const count = /^sluice_sync_run_duration_seconds_count\{job="cron",result="ok"\} (\d+)$/m.exec(metrics);
      assert.ok(
        count && Number(count[1]) >= 1,
        `a run time per job in /metrics:\n${metrics
          .split('\n')
          .filter((l) => l.includes('sluice_sync'))
          .join('\n')}`,
      );
      const link = join(root, 'docker/registry/v2/repositories/docker.io/library/app/_manifests/tags/1/current/link');
      assert.ok(
        await access(link).then(
          () => true,
          () => false,
        ),
        'the scheduled job copied the image',
      );
    } finally {
      await sluice.stop();
    }
  } finally {
    await proxy.close();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  }
});
