import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry.js';
import { startThrottleProxy, type SeenRequest } from '../helpers/throttle-proxy.js';
import { makeImage, pushImage, type TestImage } from '../helpers/images.js';
import { assertIntact } from '../helpers/oci-http.js';
import { sluice } from '../helpers/sluice-cli.js';

const count = (seen: SeenRequest[], method: string, path: RegExp) => seen.filter((s) => s.method === method && path.test(s.path)).length;

test('sluice sync --src yaml: one ping per registry, shared layers mounted where the run put them, listed tags HEADed without a tag list, in parallel', async () => {
  const up = await startRegistry();
  const dst = await startRegistry();
  const upstream = await startThrottleProxy(up.url);
  const dest = await startThrottleProxy(dst.url);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-sync-cheap-'));
  try {
    const base = { 'base.txt': 'a base layer every image shares\n'.repeat(1000) };
    const images = new Map<string, TestImage>();
    for (const repo of ['one', 'two', 'three']) {
      for (const tag of ['v1', 'v2']) {
        const img = await makeImage({ layers: [base, { 'own.txt': `${repo}:${tag}` }], label: `${repo}-${tag}` });
        await pushImage(up.url, `team/${repo}`, tag, img);
        images.set(`${repo}:${tag}`, img);
      }
    }
    const shared = images.get('one:v1')!.layers[0]!.descriptor.digest;
    const yml = join(dir, 'sync.yml');
    await writeFile(yml, [`${upstream.host}:`, '  images:', ...['one', 'two', 'three'].map((r) => `    team/${r}: [v1, v2]`), '  tls-verify: false', ''].join('\n'));
    const args = ['sync', '--src', 'yaml', yml, '--dest', `docker://${dest.host}/mirror`, '--dest-tls-verify=false', '--state', join(dir, 'state'), '--json'];

    const first = await sluice(args);
    assert.equal(first.code, 0, first.stderr);
    for (const [key, img] of images) {
      const [repo, tag] = key.split(':');
      await assertIntact(dst.url, `mirror/${repo}`, tag!, img);
    }
    const upLog = upstream.seen.map((s) => `${s.method} ${s.path}`).join('\n');
    const destLog = dest.seen.map((s) => `${s.method} ${s.path}`).join('\n');
    assert.equal(count(upstream.seen, 'GET', /^\/v2\/$/), 1, `one ping upstream for the whole run:\n${upLog}`);
    assert.equal(count(dest.seen, 'GET', /^\/v2\/$/), 1, `one ping at the destination for the whole run:\n${destLog}`);
    assert.equal(count(upstream.seen, 'GET', /\/tags\/list/), 0, `the YAML lists the tags; no tag list needed:\n${upLog}`);
    // The shared layer travels once; the other repositories mount it from where the run put it.
    assert.equal(count(upstream.seen, 'GET', new RegExp(`/blobs/${shared}$`)), 1, upLog);
    assert.equal(count(dest.seen, 'PUT', new RegExp(`digest=${encodeURIComponent(shared)}`)), 1, destLog);
    assert.equal(dest.seen.filter((s) => s.method === 'POST' && s.path.includes(`mount=${encodeURIComponent(shared)}`) && s.status === 201).length, 2, destLog);

    // Nothing changed: one ping and one HEAD per tag, two at a time per repository.
    upstream.seen.length = 0;
    dest.seen.length = 0;
    upstream.delay = { path: /\/manifests\//, method: 'HEAD', ms: 300 };
    const again = await sluice(args);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual((JSON.parse(again.stdout) as { copied: string[] }[]).flatMap((r) => r.copied), []);
    const kinds = upstream.seen.map((s) => `${s.method} ${s.path.replace(/manifests\/.*$/, 'manifests/TAG')}`).sort();
    assert.deepEqual(kinds, ['GET /v2/', ...['one', 'one', 'three', 'three', 'two', 'two'].map((r) => `HEAD /v2/team/${r}/manifests/TAG`)]);
    assert.equal(upstream.maxInFlight('HEAD'), 2, 'the HEADs of a repository go out together');
    assert.deepEqual(dest.seen, [], 'the destination is not asked anything when nothing moved');
  } finally {
    await upstream.close();
    await dest.close();
    await up.close();
    await dst.close();
    await rm(dir, { recursive: true, force: true });
  }
});
