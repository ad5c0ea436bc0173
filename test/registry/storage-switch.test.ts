import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, testStorage } from '../helpers/registry.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { assertIntact } from '../helpers/oci-http.js';

// The registry tests run on the filesystem and again with SLUICE_TEST_STORAGE=s3: this checks the switch
// itself, on whichever storage this pass is on.

test(`startRegistry runs on ${testStorage}: each registry has storage of its own, and passing its root shares it`, async () => {
  const a = await startRegistry();
  const b = await startRegistry();
  let c: Awaited<ReturnType<typeof startRegistry>> | undefined;
  try {
    assert.equal(a.storage, testStorage);
    assert.equal(a.ctx.driver.name, testStorage);
    assert.notEqual(a.root, b.root);
    const img = await makeImage({ label: 'switch' });
    await pushImage(a.url, 'switch/app', 'v1', img);
    assert.equal(
      (await fetch(`${b.url}/v2/switch/app/manifests/v1`)).status,
      404,
      "a second registry sees none of the first one's images",
    );
    assert.deepEqual(await (await fetch(`${b.url}/v2/_catalog`)).json(), { repositories: [] });
    c = await startRegistry({}, a.root);
    await assertIntact(c.url, 'switch/app', 'v1', img);
    assert.deepEqual(await c.files('docker/registry/v2/repositories/switch/app/_manifests/tags'), [
      'v1/current/link',
      `v1/index/sha256/${img.digest.slice(7)}/link`,
    ]);
  } finally {
    await c?.close();
    await b.close();
    await a.close();
  }
});
