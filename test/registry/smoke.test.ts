import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, makeMultiArch, pushImage } from '../helpers/images.js';

test('push and pull an image and a multi-arch index over HTTP', async () => {
  const reg = await startRegistry();
  try {
    const img = await makeImage();
    await pushImage(reg.url, 'team/app', 'v1', img);
    const r = await fetch(`${reg.url}/v2/team/app/manifests/v1`, { headers: { accept: img.mediaType } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('docker-content-digest'), img.digest);
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), img.manifest);
    const b = await fetch(`${reg.url}/v2/team/app/blobs/${img.layers[0]!.descriptor.digest}`);
    assert.deepEqual(Buffer.from(await b.arrayBuffer()), img.layers[0]!.bytes);
    const idx = await makeMultiArch();
    await pushImage(reg.url, 'team/multi', 'latest', idx);
    const tags = await (await fetch(`${reg.url}/v2/team/multi/tags/list`)).json();
    assert.deepEqual(tags, { name: 'team/multi', tags: ['latest'] });
    const cat = await (await fetch(`${reg.url}/v2/_catalog`)).json();
    assert.deepEqual(cat, { repositories: ['team/app', 'team/multi'] });
  } finally {
    await reg.close();
  }
});
