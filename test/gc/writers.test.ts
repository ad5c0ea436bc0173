import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Digest } from '../../src/oci/digest.js';
import type { RepositoryName } from '../../src/oci/name.js';
import { buildMirrorJobs } from '../../src/registry/sync-setup.js';
import { sweepWhile } from '../helpers/gc.js';
import { makeImage, pushImage, type TestImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const quiet = { info: () => undefined, warn: () => undefined };

/**
 * Every blob the image names is in the repository's storage (read through the driver, not the pull-through
 * cache). A cache fill links its blob just after the client has the last byte, so this waits (generously).
 */
async function storedWhole(reg: TestRegistry, repo: string, img: TestImage): Promise<void> {
  const r = reg.ctx.repo(repo as RepositoryName);
  for (const b of [img.config, ...img.layers]) {
    const d = b.descriptor.digest as Digest;
    for (const until = Date.now() + 15_000; (await r.blobSize(d)) === null && Date.now() < until; )
      await new Promise((w) => setTimeout(w, 100));
    assert.notEqual(await r.blobSize(d), null, `blob ${d} of ${repo}`);
  }
}

test('a mirror job copying an image while the collector deletes its blobs stores the image whole', async (t) => {
  const up = await startRegistry();
  t.after(() => up.close());
  const reg = await startRegistry({
    upstreams: { 'docker.io': { url: up.url } },
    flows: [{ images: ['docker.io/team/*'] }],
    mirrors: [{ name: 'm', images: ['docker.io/team/app'] }],
  });
  t.after(() => reg.close());
  const img = await makeImage({ label: 'mirrored while collected' });
  await pushImage(up.url, 'team/app', 'v1', img);
  const job = buildMirrorJobs(reg.ctx, reg.ctx.config, quiet)[0]!;
  // Without claims the job finds the blobs stored, links them and tags the image; then the sweep deletes them.
  const summary = (await sweepWhile(reg, img, () => job.run())) as { ok: boolean; errors: unknown[] };
  assert.equal(summary.ok, true, JSON.stringify(summary.errors));
  assert.equal(await reg.ctx.repo('docker.io/team/app' as RepositoryName).resolveTag('v1'), img.digest);
  await storedWhole(reg, 'docker.io/team/app', img);
});

test('a cache fill of an image while the collector deletes its blobs leaves an image the cache serves with upstream gone', async (t) => {
  const up = await startRegistry();
  let upClosed = false;
  t.after(() => (upClosed ? undefined : up.close()));
  const reg = await startRegistry({
    upstreams: { 'docker.io': { url: up.url, ttl: '1h', timeout: '2s' } },
    flows: [{ images: ['docker.io/library/*'] }],
  });
  t.after(() => reg.close());
  const img = await makeImage({ label: 'cached while collected' });
  await pushImage(up.url, 'library/app', '1', img);
  const repo = 'docker.io/library/app';
  // A pull through the cache: the manifest, then each blob (found stored already, so only linked).
  const pull = async (): Promise<void> => {
    const m = await fetch(`${reg.url}/v2/${repo}/manifests/1`, { headers: { accept: img.mediaType } });
    assert.equal(m.status, 200);
    await m.arrayBuffer();
    for (const b of [img.config, ...img.layers]) {
      const r = await fetch(`${reg.url}/v2/${repo}/blobs/${b.descriptor.digest}`);
      assert.equal(r.status, 200);
      await r.arrayBuffer();
    }
  };
  await sweepWhile(reg, img, pull);
  await storedWhole(reg, repo, img);
  await up.close();
  upClosed = true;
  for (const b of [img.config, ...img.layers])
    assert.equal(
      (await fetch(`${reg.url}/v2/${repo}/blobs/${b.descriptor.digest}`)).status,
      200,
      'served from storage',
    );
});
