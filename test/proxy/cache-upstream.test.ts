import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRegistry } from '../helpers/registry.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { assertIntact, bytesOf, errorOf, makeArtifact } from '../helpers/oci-http.js';
import { digestTag } from '../../src/oci/digest.js';

test('upstream 5xx, 429 and a hang are answered from the cache (stale); a cold miss says what upstream did', async () => {
  const up = await startRegistry();
  const proxy = await startFaultProxy(up.url);
  const cache = await startRegistry({
    upstreams: { 'docker.io': { url: proxy.url, ttl: '100ms', timeout: '500ms' } },
    flows: [{ images: ['docker.io/library/*'] }],
  });
  try {
    const img = await makeImage({ label: 'faults' });
    await pushImage(up.url, 'library/app', '1', img);
    await assertIntact(cache.url, 'docker.io/library/app', '1', img);
    for (const mode of [
      { kind: 'status' as const, status: 503 },
      { kind: 'status' as const, status: 429, headers: { 'retry-after': '0' } },
      { kind: 'hang' as const },
    ]) {
      proxy.mode = mode;
      await sleep(150);
      const started = Date.now();
      const r = await fetch(`${cache.url}/v2/docker.io/library/app/manifests/1`);
      assert.equal(r.status, 200, JSON.stringify(mode));
      assert.equal(r.headers.get('docker-content-digest'), img.digest);
      // A short upstream timeout: the stale answer comes in seconds, not minutes.
      assert.ok(Date.now() - started < 5000, `stale answer took ${Date.now() - started} ms`);
    }
    proxy.mode = { kind: 'status', status: 429, headers: { 'retry-after': '0' } };
    const cold = await fetch(`${cache.url}/v2/docker.io/library/other/manifests/1`);
    assert.equal(cold.status, 429);
    assert.equal((await errorOf(cold)).code, 'TOOMANYREQUESTS');
    const metrics = await (await fetch(`${cache.url}/metrics`)).text();
    assert.match(metrics, /sluice_cache_requests_total\{kind="manifest",result="stale"\} 3/);
  } finally {
    await cache.close();
    await proxy.close();
    await up.close();
  }
});

test('an upstream 404 is remembered briefly: repeated pulls of a missing tag do not hammer upstream', async () => {
  const up = await startRegistry();
  const proxy = await startFaultProxy(up.url);
  const cache = await startRegistry({
    upstreams: { 'docker.io': { url: proxy.url, negativettl: '400ms' } },
    flows: [{ images: ['docker.io/library/*'] }],
  });
  try {
    await pushImage(up.url, 'library/app', '1', await makeImage({ label: 'neg' }));
    // A tag not cached yet is asked for with one GET (no HEAD first: the GET answers what a HEAD would).
    const asked = () => proxy.seen.filter((s) => /^(GET|HEAD) \/v2\/library\/app\/manifests\/2$/.test(s));
    for (let i = 0; i < 5; i++)
      assert.equal((await fetch(`${cache.url}/v2/docker.io/library/app/manifests/2`)).status, 404);
    assert.deepEqual(asked(), ['GET /v2/library/app/manifests/2']);
    await sleep(500);
    const img = await makeImage({ label: 'neg2' });
    await pushImage(up.url, 'library/app', '2', img);
    await assertIntact(cache.url, 'docker.io/library/app', '2', img);
    assert.deepEqual(asked(), ['GET /v2/library/app/manifests/2', 'GET /v2/library/app/manifests/2']);
  } finally {
    await cache.close();
    await proxy.close();
    await up.close();
  }
});

test('referrers and cosign tags of a fetched manifest come along when the flow asks; by-digest pulls of cached content never touch upstream', async () => {
  const up = await startRegistry();
  const proxy = await startFaultProxy(up.url);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-audit-'));
  const cache = await startRegistry({
    upstreams: { 'docker.io': { url: proxy.url } },
    flows: [{ images: ['docker.io/library/*'], tags: { include: ['v*'] }, referrers: true }],
    audit: { path: join(dir, 'audit.log') },
  });
  try {
    const img = await makeImage({ label: 'signed' });
    await pushImage(up.url, 'library/app', 'v1', img);
    const subject = { digest: img.digest, size: img.manifest.length, mediaType: img.mediaType };
    const sbom = makeArtifact({ artifactType: 'application/spdx+json', payload: '{"sbom":1}', subject });
    await pushImage(up.url, 'library/app', 'sbom-tmp', sbom);
    const sig = makeArtifact({
      artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
      payload: '{"critical":{}}',
      annotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQ==' },
    });
    await pushImage(up.url, 'library/app', `${digestTag(img.digest)}.sig`, sig);
    assert.equal((await fetch(`${cache.url}/v2/docker.io/library/app/manifests/v1`)).status, 200);
    await cache.ctx.cache!.idle();
    const refs = (await (await fetch(`${cache.url}/v2/docker.io/library/app/referrers/${img.digest}`)).json()) as {
      manifests: { digest: string; artifactType: string }[];
    };
    assert.deepEqual(
      refs.manifests.map((m) => m.digest),
      [sbom.digest],
    );
    // The .sig tag is outside the v* tag filter, but it belongs to an approved, cached image.
    const seenBefore = proxy.seen.length;
    await assertIntact(cache.url, 'docker.io/library/app', `${digestTag(img.digest)}.sig`, sig);
    await assertIntact(cache.url, 'docker.io/library/app', sbom.digest, sbom);
    // By digest: served from the cache, upstream is not asked.
    const byDigest = await fetch(`${cache.url}/v2/docker.io/library/app/manifests/${img.digest}`);
    assert.deepEqual(await bytesOf(byDigest), img.manifest);
    assert.deepEqual(
      proxy.seen.slice(seenBefore).filter((s) => !s.startsWith('HEAD /v2/library/app/manifests/sha256-')),
      [],
    );
    // Fetches and refusals are audited with who asked.
    assert.equal((await fetch(`${cache.url}/v2/docker.io/library/app/manifests/latest`)).status, 403);
    await cache.close();
    const lines = (await readFile(join(dir, 'audit.log'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string>);
    const fetches = lines.filter((l) => l.action === 'fetch');
    assert.ok(
      fetches.some(
        (l) =>
          l.decision === 'allowed' && l.repository === 'docker.io/library/app' && l.reference === `v1@${img.digest}`,
      ),
      JSON.stringify(fetches),
    );
    const denied = fetches.find((l) => l.decision === 'denied');
    assert.ok(denied, 'no refusal audited');
    assert.equal(denied.reference, 'latest');
    assert.equal(denied.principal, 'anonymous');
    assert.match(denied.reason, /includes only tags v\*/);
  } finally {
    await cache.close().catch(() => undefined);
    await proxy.close();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('per-tag fetch times are kept in storage; a read-only node serves the cache without fetching', async () => {
  const up = await startRegistry();
  const cache = await startRegistry({
    upstreams: { 'docker.io': { url: up.url, ttl: '0s' } },
    flows: [{ images: ['docker.io/library/*'] }],
  });
  try {
    const img = await makeImage({ label: 'times' });
    await pushImage(up.url, 'library/app', '1', img);
    await pushImage(up.url, 'library/app', '2', img);
    await assertIntact(cache.url, 'docker.io/library/app', '1', img);
    const record = JSON.parse(
      (await cache.ctx.driver.getContent(
        'docker/registry/v2/repositories/docker.io/library/app/_sluice/cache/tags/1.json',
      ))!.toString('utf8'),
    ) as { digest: string; fetchedAt: string };
    assert.equal(record.digest, img.digest);
    assert.ok(Date.now() - Date.parse(record.fetchedAt) < 60_000);
    // The last pull is the pull recorder's (src/gc/pulls.ts, test/gc/pulls.test.ts), not this record's.
    assert.deepEqual(Object.keys(record).sort(), ['digest', 'fetchedAt']);
    await cache.app.close();
    // The same root, read-only: what is cached is served, nothing else is fetched or written.
    const ro = await startRegistry(
      {
        upstreams: { 'docker.io': { url: up.url } },
        flows: [{ images: ['docker.io/library/*'] }],
        storage: { maintenance: { readonly: { enabled: true } } },
      },
      cache.root,
    );
    try {
      await assertIntact(ro.url, 'docker.io/library/app', '1', img);
      const r = await fetch(`${ro.url}/v2/docker.io/library/app/manifests/2`);
      assert.equal(r.status, 404);
      assert.match((await errorOf(r)).message, /read-only so it does not fetch/);
    } finally {
      await ro.close();
    }
  } finally {
    await cache.close().catch(() => undefined);
    await up.close();
  }
});

test('an upstream that dies mid-blob leaves nothing behind; the client sees a cut body and the next pull fetches it whole', async () => {
  const up = await startRegistry();
  const proxy = await startFaultProxy(up.url);
  const cache = await startRegistry({
    upstreams: { 'docker.io': { url: proxy.url } },
    flows: [{ images: ['docker.io/library/*'] }],
  });
  try {
    const big = (await import('node:crypto')).randomBytes(8 * 1024 * 1024);
    const img = await makeImage({ layers: [{ 'big.bin': big }], label: 'cut' });
    await pushImage(up.url, 'library/cut', '1', img);
    assert.equal((await fetch(`${cache.url}/v2/docker.io/library/cut/manifests/1`)).status, 200);
    const layer = img.layers[0]!;
    proxy.mode = { kind: 'cut', bytes: 1024 * 1024, path: /\/blobs\// };
    // The client got headers and part of the body, then a cut connection: its read fails.
    await assert.rejects(async () => {
      const r = await fetch(`${cache.url}/v2/docker.io/library/cut/blobs/${layer.descriptor.digest}`);
      await r.arrayBuffer();
    });
    // Nothing half-written became visible, and no upload session was left.
    const repo = cache.ctx.repo('docker.io/library/cut' as never);
    const deadline = Date.now() + 5000;
    while (
      Date.now() < deadline &&
      (await cache.ctx.driver.list('docker/registry/v2/repositories/docker.io/library/cut/_uploads')).length > 0
    )
      await sleep(50);
    assert.deepEqual(await cache.ctx.driver.list('docker/registry/v2/repositories/docker.io/library/cut/_uploads'), []);
    assert.equal(await repo.blobSize(layer.descriptor.digest), null);
    assert.equal(await cache.ctx.blobs.size(layer.descriptor.digest), null);
    // Upstream is back: the next pull fetches it whole and verified.
    proxy.mode = { kind: 'pass' };
    const r = await fetch(`${cache.url}/v2/docker.io/library/cut/blobs/${layer.descriptor.digest}`);
    assert.ok((await bytesOf(r)).equals(layer.bytes));
  } finally {
    await cache.close();
    await proxy.close();
    await up.close();
  }
});

test('cold pulls of images in different repositories share the upstream connection: one ping, one GET per manifest and blob', async () => {
  const up = await startRegistry();
  const proxy = await startFaultProxy(up.url);
  const cache = await startRegistry({
    upstreams: { 'docker.io': { url: proxy.url } },
    flows: [{ images: ['docker.io/library/*'] }],
  });
  try {
    const imgs = [
      await makeImage({ label: 'pool-a' }),
      await makeImage({ label: 'pool-b' }),
      await makeImage({ label: 'pool-c' }),
    ];
    for (const [i, img] of imgs.entries()) await pushImage(up.url, `library/pool${i}`, '1', img);
    const from = proxy.seen.length;
    for (const [i, img] of imgs.entries()) await assertIntact(cache.url, `docker.io/library/pool${i}`, '1', img);
    const seen = proxy.seen.slice(from);
    assert.deepEqual(
      seen.filter((s) => s === 'GET /v2/'),
      ['GET /v2/'],
      seen.join('\n'),
    );
    assert.equal(seen.filter((s) => /^GET \/v2\/library\/pool\d\/manifests\/1$/.test(s)).length, 3, seen.join('\n'));
  } finally {
    await cache.close();
    await proxy.close();
    await up.close();
  }
});
