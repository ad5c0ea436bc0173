import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry } from '../helpers/registry.js';
import { startHostileUpstream, type Lie } from '../helpers/hostile-upstream.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { assertIntact } from '../helpers/oci-http.js';
import { buildMirrorJobs } from '../../src/registry/sync-setup.js';

// Mirror jobs against an upstream that lies: the run reports an error for what it could not copy, reads a
// bounded amount of the lie, stores no lying blob or manifest, and copies once the lies stop.

const quiet = { info: () => undefined, warn: () => undefined };
const HUGE = 400 << 20;

const cases: { name: string; images: string; match: RegExp; lie: Lie; says: RegExp }[] = [
  {
    name: 'a 400 MiB tag list',
    images: 'docker.io/library/app',
    match: /^GET \/v2\/library\/app\/tags\/list/,
    lie: { kind: 'huge', bytes: HUGE, contentLength: false },
    says: /bound/,
  },
  {
    name: 'a 400 MiB catalog page',
    images: 'docker.io/library/*',
    match: /^GET \/v2\/_catalog/,
    lie: { kind: 'huge', bytes: HUGE },
    says: /bound/,
  },
  {
    name: 'a 400 MiB error body for the tag list',
    images: 'docker.io/library/app',
    match: /^GET \/v2\/library\/app\/tags\/list/,
    lie: { kind: 'status', status: 500, bodyBytes: HUGE, contentLength: false },
    says: /HTTP 500/,
  },
  {
    name: 'a 400 MiB manifest',
    images: 'docker.io/library/app',
    match: /^GET \/v2\/library\/app\/manifests\//,
    lie: { kind: 'huge', bytes: HUGE, contentLength: false },
    says: /bound/,
  },
  {
    name: 'a blob whose bytes do not match its digest',
    images: 'docker.io/library/app',
    match: /^GET \/v2\/library\/app\/blobs\//,
    lie: { kind: 'corrupt' },
    says: /digest/,
  },
  {
    name: 'an empty 200 for a blob',
    images: 'docker.io/library/app',
    match: /^GET \/v2\/library\/app\/blobs\//,
    lie: { kind: 'empty' },
    says: /bytes/,
  },
  {
    name: 'a redirect loop for a manifest',
    images: 'docker.io/library/app',
    match: /^(GET|HEAD) \/v2\/library\/app\/manifests\//,
    lie: { kind: 'redirect-loop' },
    says: /redirect/i,
  },
];

for (const c of cases) {
  test(`a mirror job whose upstream sends ${c.name} reports an error, stores nothing, and copies once the lies stop`, {
    timeout: 300_000,
  }, async (t) => {
    const up = await startRegistry();
    t.after(() => up.close());
    const hostile = await startHostileUpstream(up.url);
    t.after(() => hostile.close());
    const reg = await startRegistry({
      upstreams: { 'docker.io': { url: hostile.url } },
      flows: [{ images: ['docker.io/**'] }],
      mirrors: [{ name: 'hostile', images: [c.images] }],
    });
    t.after(() => reg.close());
    const img = await makeImage({ label: `sync-${c.name}` });
    await pushImage(up.url, 'library/app', '1', img);
    hostile.lie(c.match, c.lie);
    const job = () => buildMirrorJobs(reg.ctx, reg.ctx.config, quiet)[0]!;
    const run = await job().run();
    assert.equal(run.ok, false, JSON.stringify(run));
    assert.match(run.errors.map((e) => e.error).join('\n'), c.says);
    assert.ok(hostile.lieBytesSent < 64 << 20, `the job read ${hostile.lieBytesSent >> 20} MiB of the lie`);
    const repo = reg.ctx.repo('docker.io/library/app' as never);
    assert.equal(await repo.resolveTag('1'), null);
    for (const l of img.layers) assert.equal(await reg.ctx.blobs.size(l.descriptor.digest), null);
    hostile.rules.length = 0;
    const again = await job().run();
    assert.equal(again.ok, true, JSON.stringify(again.errors));
    await assertIntact(reg.url, 'docker.io/library/app', '1', img);
  });
}

test('a mirror job whose upstream drips a blob gives it up at the configured minimum rate and stores nothing', {
  timeout: 300_000,
}, async (t) => {
  const up = await startRegistry();
  t.after(() => up.close());
  const hostile = await startHostileUpstream(up.url);
  t.after(() => hostile.close());
  const reg = await startRegistry({
    upstreams: { 'docker.io': { url: hostile.url, minrate: 64 << 10, ratewindow: '1s' } },
    flows: [{ images: ['docker.io/**'] }],
    mirrors: [{ name: 'drip', images: ['docker.io/library/app'] }],
  });
  t.after(() => reg.close());
  const img = await makeImage({
    label: 'sync-drip',
    layers: [{ 'big.bin': (await import('node:crypto')).randomBytes(1 << 20) }],
  });
  await pushImage(up.url, 'library/app', '1', img);
  // 2 KiB/s: the 1 MiB layer would take over eight minutes.
  hostile.lie(/^GET \/v2\/library\/app\/blobs\//, { kind: 'drip', bytesPerSecond: 2048 });
  const started = Date.now();
  const run = await buildMirrorJobs(reg.ctx, reg.ctx.config, quiet)[0]!.run();
  assert.equal(run.ok, false, JSON.stringify(run));
  assert.match(run.errors.map((e) => e.error).join('\n'), /minimum/);
  assert.ok(Date.now() - started < 120_000, `the run took ${Date.now() - started} ms`);
  assert.equal(await reg.ctx.repo('docker.io/library/app' as never).resolveTag('1'), null);
  for (const l of img.layers) assert.equal(await reg.ctx.blobs.size(l.descriptor.digest), null);
});
