import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry } from '../helpers/registry.js';
import { startHostileUpstream } from '../helpers/hostile-upstream.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { assertIntact } from '../helpers/oci-http.js';
import { startCache } from './helpers.js';

const TRAVERSAL = '../../../../../team/app/_manifests/tags/v1';

test('the cache lists only valid tags of a hostile tag list and fetches nothing for a traversal tag', async (t) => {
  const up = await startRegistry();
  t.after(() => up.close());
  const hostile = await startHostileUpstream(up.url);
  t.after(() => hostile.close());
  const cache = await startCache(hostile.url, [{ images: ['docker.io/konard/**'] }]);
  t.after(() => cache.close());
  const mine = await makeImage({ label: 'cache-local' });
  await pushImage(cache.url, 'team/app', 'v1', mine);
  const theirs = await makeImage({ label: 'cache-upstream' });
  await pushImage(up.url, 'konard/app', 'good', theirs);
  hostile.lie(/tags\/list/, { kind: 'tags', tags: [TRAVERSAL, 'a/b', 'a'.repeat(200), 'good', 7 as never] });
  hostile.lie(/^(GET|HEAD) \/v2\/konard\/app\/manifests\/(?!good$|sha256)/, {
    kind: 'redirect',
    to: `${up.url}/v2/konard/app/manifests/good`,
  });

  const listed = await fetch(`${cache.url}/v2/docker.io/konard/app/tags/list`);
  assert.equal(listed.status, 200);
  assert.deepEqual(((await listed.json()) as { tags: string[] }).tags, ['good']);
  const before = await cache.files();
  hostile.seen.length = 0;
  for (const bad of [TRAVERSAL, 'a/b', 'a'.repeat(200)]) {
    const r = await fetch(`${cache.url}/v2/docker.io/konard/app/manifests/${encodeURIComponent(bad)}`);
    assert.ok(r.status >= 400 && r.status < 500, `${bad.slice(0, 40)}: HTTP ${r.status}`);
  }
  assert.deepEqual(
    hostile.seen.filter((s) => s.includes('/manifests/')),
    [],
    'nothing asked of upstream',
  );
  assert.deepEqual(await cache.files(), before);
  await assertIntact(cache.url, 'docker.io/konard/app', 'good', theirs);
  await assertIntact(cache.url, 'team/app', 'v1', mine);
});
