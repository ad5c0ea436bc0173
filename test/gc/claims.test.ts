import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Collector } from '../../src/gc/collector.js';
import type { StorageDriver } from '../../src/storage/driver.js';
import { makeImage, pushBlob, pushImage } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';

/** Counts the storage calls a driver gets for paths under the collector's records, by method and path. */
function countGcCalls(driver: StorageDriver): string[] {
  const calls: string[] = [];
  for (const method of ['stat', 'getContent', 'list', 'delete', 'putContent'] as const) {
    const original = driver[method].bind(driver) as (...a: unknown[]) => Promise<unknown>;
    (driver as unknown as Record<string, unknown>)[method] = (path: string, ...rest: unknown[]) => {
      if (path.includes('/_sluice/gc/')) calls.push(`${method} ${path.replace(/^.*\/_sluice\/gc\//, '')}`);
      return original(path, ...rest);
    };
  }
  return calls;
}

/** HEADs every blob as a pusher asks before uploading, then pushes the image. */
async function pushLikeAClient(url: string, repo: string, tag: string, label: string): Promise<void> {
  const img = await makeImage({ label });
  for (const b of [img.config, ...img.layers])
    await fetch(`${url}/v2/${repo}/blobs/${b.descriptor.digest}`, { method: 'HEAD' });
  await pushImage(url, repo, tag, img);
}

test('a push with no garbage collection in play looks up no candidate record and no deletion marker', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const calls = countGcCalls(reg.ctx.driver);
  await pushLikeAClient(reg.url, 'app', 'v1', 'first');
  await pushLikeAClient(reg.url, 'app', 'v2', 'second');
  // Only `active`, read once per few seconds (how many times depends on how fast the pushes go): never two
  // lookups per digest.
  assert.deepEqual(
    calls.filter((c) => c !== 'stat active'),
    [],
  );
  t.diagnostic(`${calls.length} reads of the collector's state for two pushes`);
});

test('the collector removes active once no record is left, so claims are free again', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const img = await makeImage({ label: 'blobs first, manifest later' });
  for (const b of [img.config, ...img.layers]) await pushBlob(reg.url, 'app', b);
  const collector = new Collector(reg.ctx.driver);
  const pass = () => collector.collect({ graceMs: 60_000, deleteUntagged: false, dryRun: false });
  await pass();
  const state = async () => (await reg.files('docker/registry/v2/_sluice/gc')).sort();
  assert.deepEqual(
    await state(),
    ['active', ...[img.config, ...img.layers].map((b) => `candidates/${b.descriptor.digest.replace(':', '/')}`)].sort(),
  );
  await pushImage(reg.url, 'app', 'v1', img);
  await pass();
  assert.deepEqual(await state(), []);
});
