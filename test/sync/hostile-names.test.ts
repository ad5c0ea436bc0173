import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startHostileUpstream, type HostileUpstream } from '../helpers/hostile-upstream.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { assertIntact } from '../helpers/oci-http.js';
import { buildMirrorJobs } from '../../src/registry/sync-setup.js';
import type { PlanStep } from '../../src/sync/job.js';

const quiet = { info: () => undefined, warn: () => undefined };
const TRAVERSAL = '../../../../../team/app/_manifests/tags/v1';
const LONG = 'a'.repeat(200);

/** A real upstream, the hostile harness in front of it, and a registry with one mirror job of `image` through it. */
async function mirrorBehindHostile(
  t: TestContext,
  image: string,
): Promise<{ up: TestRegistry; hostile: HostileUpstream; reg: TestRegistry }> {
  const up = await startRegistry();
  t.after(() => up.close());
  const hostile = await startHostileUpstream(up.url);
  t.after(() => hostile.close());
  const reg = await startRegistry({
    upstreams: { 'docker.io': { url: hostile.url } },
    flows: [{ images: ['docker.io/konard/**'] }],
    mirrors: [{ name: 'hostile', images: [image] }],
  });
  t.after(() => reg.close());
  return { up, hostile, reg };
}

test('a mirror job mirrors the valid tags of a hostile tag list and refuses traversal, nested and overlong ones', async (t) => {
  const { up, hostile, reg } = await mirrorBehindHostile(t, 'docker.io/konard/app');
  const mine = await makeImage({ label: 'local-team-app' });
  await pushImage(reg.url, 'team/app', 'v1', mine);
  const theirs = await makeImage({ label: 'upstream-app' });
  await pushImage(up.url, 'konard/app', 'good', theirs);
  hostile.lie(/tags\/list/, { kind: 'tags', tags: [TRAVERSAL, 'a/b', LONG, 'good'] });
  // Every HEAD is sent to the real tag, so only the name check stands between the upstream and the path.
  hostile.lie(/^HEAD \/v2\/konard\/app\/manifests\//, {
    kind: 'redirect',
    to: `${up.url}/v2/konard/app/manifests/good`,
  });

  const plan: PlanStep[] = [];
  const run = await buildMirrorJobs(reg.ctx, reg.ctx.config, quiet)[0]!.run({ onStep: (s) => plan.push(s) });

  assert.deepEqual(run.copied, ['docker.io/konard/app:good'], JSON.stringify(run));
  assert.deepEqual(run.errors, []);
  await assertIntact(reg.url, 'docker.io/konard/app', 'good', theirs);
  await assertIntact(reg.url, 'team/app', 'v1', mine);
  assert.deepEqual(await reg.ctx.repo('team/app' as never).tags(), ['v1']);
  assert.deepEqual(await reg.ctx.repo('docker.io/konard/app' as never).tags(), ['good']);
  assert.deepEqual(await reg.files('docker/registry/v2/repositories/docker.io/konard/app/_manifests/tags'), [
    'good/current/link',
    `good/index/sha256/${theirs.digest.slice(7)}/link`,
  ]);
  const refused = plan.filter((s) => s.action === 'refused');
  assert.equal(refused.length, 3, JSON.stringify(plan));
  for (const bad of [TRAVERSAL, 'a/b'])
    assert.ok(
      refused.some((s) => s.reason.includes(JSON.stringify(bad))),
      `${bad} is named: ${JSON.stringify(refused)}`,
    );
  const long = refused.find((s) => s.reason.includes('200 characters'));
  assert.ok(long && long.reason.length < 200, JSON.stringify(refused));
  assert.equal(run.refused.length, 3);
});

test('a mirror job refuses repository names of a hostile catalog that are not names and mirrors the valid ones', async (t) => {
  const { up, hostile, reg } = await mirrorBehindHostile(t, 'docker.io/konard/*');
  const img = await makeImage({ label: 'catalog-ok' });
  await pushImage(up.url, 'konard/ok', 'v1', img);
  hostile.lie(/_catalog/, {
    kind: 'catalog',
    repositories: ['konard/ok', 'konard/App', 'konard/a b', `konard/${'x'.repeat(300)}`, 7 as never],
  });

  const plan: PlanStep[] = [];
  const run = await buildMirrorJobs(reg.ctx, reg.ctx.config, quiet)[0]!.run({ onStep: (s) => plan.push(s) });

  assert.deepEqual(run.errors, []);
  assert.deepEqual(run.copied, ['docker.io/konard/ok:v1']);
  await assertIntact(reg.url, 'docker.io/konard/ok', 'v1', img);
  const refused = plan.filter((s) => s.action === 'refused').map((s) => s.reason);
  assert.equal(refused.length, 4, JSON.stringify(refused));
  assert.ok(refused.some((r) => r.includes('"konard/App"')));
  assert.ok(
    refused.every((r) => r.length < 250),
    'names are cut short',
  );
  const stored = await reg.files('docker/registry/v2/repositories/docker.io/konard');
  assert.ok(stored.length > 0 && stored.every((f) => f.startsWith('ok/')), stored.join('\n'));
});
