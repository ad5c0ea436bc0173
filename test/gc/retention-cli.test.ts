import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { gcConfigFor } from '../helpers/gc.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { sluice } from '../helpers/sluice-cli.js';

/** A config file naming the registry's storage and these retention rules. */
async function configWith(reg: TestRegistry, retention: unknown[]): Promise<string> {
  const file = await gcConfigFor(reg);
  const cfg = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  await writeFile(file, JSON.stringify({ ...cfg, retention }));
  return file;
}

async function pushTags(reg: TestRegistry, repo: string, tags: string[]): Promise<void> {
  for (const tag of tags) {
    await pushImage(reg.url, repo, tag, await makeImage({ label: `${repo} ${tag}` }));
    // Push time is the tag link's modification time: whole seconds on S3.
    if (reg.storage === 's3') await sleep(1100);
  }
}

test('sluice gc --dry-run prints the verdict of every tag retention governs, with the deciding rule, and deletes nothing', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  await pushTags(reg, 'team-a/app', ['v1', 'v2', 'stable']);
  const file = await configWith(reg, [
    { images: ['team-a/**'], latest: 1 },
    { name: 'pinned', images: ['team-a/**'], tags: ['v1'] },
  ]);
  const before = await reg.files();
  const r = await sluice(['gc', '--dry-run', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^tag team-a\/app:stable: kept by rule 1 \(latest 1\)$/m);
  assert.match(r.stdout, /^tag team-a\/app:v1: kept by rule 2 "pinned" \(tags v1\)$/m);
  assert.match(
    r.stdout,
    /^tag team-a\/app:v2: deleted: pushed \d{4}-\d\d-\d\d, never pulled; rule 1 not among its latest 1; rule 2 "pinned" speaks only of tags v1$/m,
  );
  assert.match(r.stdout, /^tag team-a\/app:v2: unused: recorded now, deleted by a pass after the grace \(pushed /m);
  assert.deepEqual(await reg.files(), before);
});

test('sluice policy explain --action retain prints the verdict for one tag or every tag of a repository', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  await pushTags(reg, 'team-a/app', ['v1', 'v2']);
  const file = await configWith(reg, [{ images: ['team-a/**'], latest: 1 }]);
  const one = await sluice(['policy', 'explain', '-c', file, '--action', 'retain', 'team-a/app:v2']);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(one.stdout, 'team-a/app:v2: kept by rule 1 (latest 1)\n');
  const all = await sluice(['policy', 'explain', '-c', file, '--action', 'retain', 'team-a/app']);
  assert.equal(all.code, 1, 'exits 1 when a tag would be deleted');
  assert.match(
    all.stdout,
    /^team-a\/app:v1: deleted: pushed .*; rule 1 not among its latest 1\nteam-a\/app:v2: kept by rule 1 \(latest 1\)\n$/,
  );
  const json = await sluice(['policy', 'explain', '-c', file, '--action', 'retain', '--json', 'team-a/app:v1']);
  assert.equal((JSON.parse(json.stdout) as { kept: boolean }[])[0]!.kept, false);
  const other = await sluice(['policy', 'explain', '-c', file, '--action', 'retain', 'team-b/app']);
  assert.equal(other.code, 0);
  assert.match(other.stdout, /^team-b\/app: kept: no retention rule matches this repository/);
  const missing = await sluice(['policy', 'explain', '-c', file, '--action', 'retain', 'team-a/app:nope']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /team-a\/app has no tag nope/);
  // The collector ran nothing: both tags are still there.
  assert.equal(
    ((await fetch(`${reg.url}/v2/team-a/app/tags/list`).then((x) => x.json())) as { tags: string[] }).tags.length,
    2,
  );
});

test('sluice gc refuses retention rules whose patterns cannot be used, naming the rule', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const r = await sluice(['gc', '--dry-run', await configWith(reg, [{ images: ['team-a/**:v*'], latest: 1 }])]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /retention rule 1: image "team-a\/\*\*:v\*" names a tag or digest; write tags: for that/);
  const bad = await sluice(['gc', '--dry-run', await configWith(reg, [{ images: ['x'], pulledwithin: '30 days' }])]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /retention\.0\.pulledwithin: expected a duration/);
});

test('sluice serve with storage.gc applies retention on its schedule and counts the deletions in its metrics', async (t) => {
  const reg = await startRegistry({
    storage: { gc: { enabled: true, interval: '1s', grace: '0s', collector: true } },
    retention: [{ images: ['team-a/**'], latest: 1 }],
  });
  t.after(() => reg.close());
  await pushTags(reg, 'team-a/app', ['old', 'new']);
  const tags = async () =>
    ((await fetch(`${reg.url}/v2/team-a/app/tags/list`).then((x) => x.json())) as { tags: string[] }).tags;
  // Two passes with a settle each; generous for a loaded machine.
  const deadline = Date.now() + 90_000;
  while ((await tags()).includes('old') && Date.now() < deadline) await sleep(250);
  assert.deepEqual(await tags(), ['new']);
  const metrics = await (await fetch(`${reg.url}/metrics`)).text();
  assert.match(metrics, /^sluice_gc_lifecycle_deleted_tags_total\{cause="retention"\} 1$/m);
});
