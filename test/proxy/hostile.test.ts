import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startHostileUpstream, type HostileUpstream } from '../helpers/hostile-upstream.js';
import { makeImage, pushImage, type TestImage } from '../helpers/images.js';
import { bytesOf, errorOf } from '../helpers/oci-http.js';

// The pull-through cache in front of an upstream that lies about bodies, lengths, digests and timing.

interface Setup {
  up: TestRegistry;
  hostile: HostileUpstream;
  cache: TestRegistry;
  img: TestImage;
}

/** A real upstream with one pushed image, a hostile harness in front of it, and a cache of the harness. */
async function setup(t: TestContext, upstream: Record<string, unknown> = {}, layer?: Buffer): Promise<Setup> {
  const up = await startRegistry();
  t.after(() => up.close());
  const hostile = await startHostileUpstream(up.url);
  t.after(() => hostile.close());
  const cache = await startRegistry({
    upstreams: { 'docker.io': { url: hostile.url, ttl: '1h', timeout: '5s', ...upstream } },
    flows: [{ images: ['docker.io/library/*'] }],
  });
  t.after(() => cache.close());
  const img = await makeImage({
    label: `hostile-${Math.random()}`,
    ...(layer ? { layers: [{ 'big.bin': layer }] } : {}),
  });
  await pushImage(up.url, 'library/app', '1', img);
  return { up, hostile, cache, img };
}

/** Waits until the cache repository holds no upload session (a failed fill removed its partial data). */
async function noUploadsLeft(cache: TestRegistry, repo = 'docker.io/library/app'): Promise<void> {
  const dir = `docker/registry/v2/repositories/${repo}/_uploads`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && (await cache.ctx.driver.list(dir).catch(() => [])).length > 0) await sleep(50);
  assert.deepEqual(await cache.ctx.driver.list(dir).catch(() => []), []);
}

/** Fetches a blob through the cache and reads it whole; resolves with the status and bytes, or the read error. */
async function pull(
  cache: TestRegistry,
  digest: string,
  method: 'GET' | 'HEAD' = 'GET',
): Promise<{ status: number; bytes?: Buffer; error?: unknown }> {
  let status = 0;
  try {
    // A fill that fails after the headers were written cuts the connection: before or during the body.
    const r = await fetch(`${cache.url}/v2/docker.io/library/app/blobs/${digest}`, { method });
    status = r.status;
    return { status, bytes: await bytesOf(r) };
  } catch (error) {
    return { status, error };
  }
}

for (const method of ['GET', 'HEAD'] as const) {
  test(`a blob ${method} whose upstream answers an empty 200 gets an error, the server stays up, and the next pull starts afresh`, {
    timeout: 120_000,
  }, async (t) => {
    const { hostile, cache, img } = await setup(t);
    assert.equal((await fetch(`${cache.url}/v2/docker.io/library/app/manifests/1`)).status, 200);
    const layer = img.layers[0]!.descriptor.digest;
    hostile.lie(/^GET \/v2\/library\/app\/blobs\//, { kind: 'empty' }, 1);
    const first = await fetch(`${cache.url}/v2/docker.io/library/app/blobs/${layer}`, { method });
    assert.equal(first.status, 502);
    if (method === 'GET') assert.match((await errorOf(first)).message, /announced 0 bytes/);
    await noUploadsLeft(cache);
    assert.equal(await cache.ctx.blobs.size(layer), null);
    const again = await pull(cache, layer);
    assert.equal(again.status, 200);
    assert.deepEqual(again.bytes, img.layers[0]!.bytes);
  });
}

test('a blob whose upstream redirect target answers an empty 200 gets an error and the server stays up', {
  timeout: 120_000,
}, async (t) => {
  const { hostile, cache, img, up } = await setup(t);
  const target = await startHostileUpstream(up.url);
  t.after(() => target.close());
  target.lie(/blobs\//, { kind: 'empty' });
  assert.equal((await fetch(`${cache.url}/v2/docker.io/library/app/manifests/1`)).status, 200);
  const layer = img.layers[0]!.descriptor.digest;
  hostile.lie(
    /^GET \/v2\/library\/app\/blobs\//,
    { kind: 'redirect', to: `${target.url}/v2/library/app/blobs/${layer}` },
    1,
  );
  const r = await fetch(`${cache.url}/v2/docker.io/library/app/blobs/${layer}`);
  assert.equal(r.status, 502);
  await noUploadsLeft(cache);
  assert.deepEqual((await pull(cache, layer)).bytes, img.layers[0]!.bytes);
});

test('a blob whose upstream bytes do not match the digest cuts every client of the fill, stores nothing, and the next pull starts afresh', {
  timeout: 120_000,
}, async (t) => {
  const { hostile, cache, img } = await setup(t, {}, (await import('node:crypto')).randomBytes(4 << 20));
  assert.equal((await fetch(`${cache.url}/v2/docker.io/library/app/manifests/1`)).status, 200);
  const layer = img.layers[0]!;
  hostile.lie(/^GET \/v2\/library\/app\/blobs\//, { kind: 'corrupt' }, 1);
  const clients = await Promise.all([
    pull(cache, layer.descriptor.digest),
    pull(cache, layer.descriptor.digest),
    pull(cache, layer.descriptor.digest),
  ]);
  for (const c of clients)
    assert.ok(
      c.error !== undefined || c.status >= 500,
      `a client got ${c.status} and ${c.bytes?.length} bytes of a lying blob`,
    );
  await noUploadsLeft(cache);
  assert.equal(await cache.ctx.blobs.size(layer.descriptor.digest), null);
  assert.deepEqual((await pull(cache, layer.descriptor.digest)).bytes, layer.bytes);
});

test('a blob whose upstream sends more than the manifest says (chunked, without end) is cut at the size and nothing is stored', {
  timeout: 120_000,
}, async (t) => {
  const { hostile, cache, img } = await setup(t);
  assert.equal((await fetch(`${cache.url}/v2/docker.io/library/app/manifests/1`)).status, 200);
  const layer = img.layers[0]!;
  hostile.lie(/^GET \/v2\/library\/app\/blobs\//, { kind: 'endless' }, 1);
  const c = await pull(cache, layer.descriptor.digest);
  assert.ok(c.error !== undefined || c.status >= 500, `got ${c.status}`);
  await noUploadsLeft(cache);
  assert.equal(await cache.ctx.blobs.size(layer.descriptor.digest), null);
  // Only a little more than the blob was taken from the endless body before the fill stopped.
  assert.ok(hostile.lieBytesSent < 64 << 20, `the harness sent ${hostile.lieBytesSent} bytes`);
  assert.deepEqual((await pull(cache, layer.descriptor.digest)).bytes, layer.bytes);
});

for (const delta of [-1, 1]) {
  test(`a blob whose upstream announces ${delta < 0 ? 'fewer' : 'more'} bytes than the manifest says is answered 502, nothing is stored`, {
    timeout: 120_000,
  }, async (t) => {
    const { hostile, cache, img } = await setup(t);
    assert.equal((await fetch(`${cache.url}/v2/docker.io/library/app/manifests/1`)).status, 200);
    const layer = img.layers[0]!;
    hostile.lie(/^GET \/v2\/library\/app\/blobs\//, { kind: 'length', declared: layer.bytes.length + delta }, 1);
    const r = await fetch(`${cache.url}/v2/docker.io/library/app/blobs/${layer.descriptor.digest}`);
    assert.equal(r.status, 502);
    assert.equal((await errorOf(r)).code, 'UNKNOWN');
    await noUploadsLeft(cache);
    assert.deepEqual((await pull(cache, layer.descriptor.digest)).bytes, layer.bytes);
  });
}

const HUGE = 400 << 20;

/** Runs `fn` while sampling the process's resident memory; the result and how far the peak rose above the start. */
async function peakGrowth<T>(fn: () => Promise<T>): Promise<{ result: T; growth: number }> {
  global.gc?.();
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  try {
    const result = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, growth: peak - start };
  } finally {
    clearInterval(timer);
  }
}

/** Far below the 400 MiB a lie sends: what the bounded reads may hold plus the noise of a busy test process. */
const BOUNDED = 120 << 20;

for (const contentLength of [true, false]) {
  const how = contentLength ? 'declared' : 'chunked';
  test(`a 400 MiB upstream tag list (${how}) is not read into memory: the cache lists its cached tags`, {
    timeout: 180_000,
  }, async (t) => {
    const { hostile, cache } = await setup(t);
    assert.equal((await fetch(`${cache.url}/v2/docker.io/library/app/manifests/1`)).status, 200);
    hostile.lie(/^GET \/v2\/library\/app\/tags\/list/, { kind: 'huge', bytes: HUGE, contentLength });
    const { result, growth } = await peakGrowth(async () => {
      const r = await fetch(`${cache.url}/v2/docker.io/library/app/tags/list`);
      return { status: r.status, body: (await r.json()) as { tags: string[] } };
    });
    assert.equal(result.status, 200);
    assert.deepEqual(result.body.tags, ['1']);
    assert.ok(growth < BOUNDED, `memory rose by ${growth >> 20} MiB`);
    assert.ok(hostile.lieBytesSent < 64 << 20, `the cache took ${hostile.lieBytesSent >> 20} MiB of the lie`);
  });

  test(`a 400 MiB upstream error body (${how}) of a manifest is not read into memory: the client gets a 502 OCI error`, {
    timeout: 180_000,
  }, async (t) => {
    const { hostile, cache } = await setup(t);
    hostile.lie(/^GET \/v2\/library\/app\/manifests\//, {
      kind: 'status',
      status: 500,
      bodyBytes: HUGE,
      contentLength,
    });
    const { result, growth } = await peakGrowth(async () => {
      const r = await fetch(`${cache.url}/v2/docker.io/library/app/manifests/1`);
      return { status: r.status, error: await errorOf(r) };
    });
    assert.equal(result.status, 502);
    assert.equal(result.error.code, 'UNKNOWN');
    assert.match(result.error.message, /HTTP 500/);
    assert.ok(hostile.lieBytesSent < 64 << 20, `the cache took ${hostile.lieBytesSent >> 20} MiB of the lie`);
    assert.ok(growth < BOUNDED, `memory rose by ${growth >> 20} MiB`);
  });

  test(`a 400 MiB upstream manifest (${how}) is refused as MANIFEST_INVALID without being read into memory`, {
    timeout: 180_000,
  }, async (t) => {
    const { hostile, cache } = await setup(t);
    hostile.lie(/^GET \/v2\/library\/app\/manifests\//, {
      kind: 'huge',
      bytes: HUGE,
      contentLength,
      contentType: 'application/vnd.oci.image.manifest.v1+json',
    });
    const { result, growth } = await peakGrowth(async () => {
      const r = await fetch(`${cache.url}/v2/docker.io/library/app/manifests/1`);
      return { status: r.status, error: await errorOf(r) };
    });
    assert.equal(result.error.code, 'MANIFEST_INVALID');
    assert.ok(growth < BOUNDED, `memory rose by ${growth >> 20} MiB`);
    assert.ok(hostile.lieBytesSent < 64 << 20, `the cache took ${hostile.lieBytesSent >> 20} MiB of the lie`);
  });

  test(`a 400 MiB token answer (${how}) is not read into memory: the client gets an OCI error`, {
    timeout: 180_000,
  }, async (t) => {
    const { hostile, cache } = await setup(t);
    hostile.lie(/^GET \/v2\/$/, {
      kind: 'status',
      status: 401,
      headers: { 'www-authenticate': `Bearer realm="${hostile.url}/token",service="hostile"` },
    });
    hostile.lie(/^GET \/token/, { kind: 'huge', bytes: HUGE, contentLength });
    const { result, growth } = await peakGrowth(async () => {
      const r = await fetch(`${cache.url}/v2/docker.io/library/app/manifests/1`);
      return { status: r.status, error: await errorOf(r) };
    });
    assert.ok(result.status >= 500, `answered ${result.status}`);
    assert.match(result.error.message, /token/);
    assert.ok(growth < BOUNDED, `memory rose by ${growth >> 20} MiB`);
    assert.ok(hostile.lieBytesSent < 64 << 20, `the cache took ${hostile.lieBytesSent >> 20} MiB of the lie`);
  });
}

test('a dripping upstream blob is given up at the configured minimum rate: its clients get an error, the partial blob goes, the next pull starts afresh', {
  timeout: 180_000,
}, async (t) => {
  const { hostile, cache, img } = await setup(
    t,
    { minrate: 64 << 10, ratewindow: '1s' },
    (await import('node:crypto')).randomBytes(1 << 20),
  );
  assert.equal((await fetch(`${cache.url}/v2/docker.io/library/app/manifests/1`)).status, 200);
  const layer = img.layers[0]!;
  // 2 KiB/s: the 1 MiB blob would take over eight minutes.
  hostile.lie(/^GET \/v2\/library\/app\/blobs\//, { kind: 'drip', bytesPerSecond: 2048 }, 1);
  const started = Date.now();
  const first = pull(cache, layer.descriptor.digest);
  await sleep(300);
  // A client that joins the dripping fill is cut with it.
  const joined = await pull(cache, layer.descriptor.digest);
  const cut = await first;
  for (const c of [cut, joined])
    assert.ok(c.error !== undefined || c.status >= 500, `a client got ${c.status} and ${c.bytes?.length} bytes`);
  // Generous for a loaded machine, far below the drip's eight minutes.
  assert.ok(Date.now() - started < 60_000, `the fill was given up after ${Date.now() - started} ms`);
  await noUploadsLeft(cache);
  assert.equal(await cache.ctx.blobs.size(layer.descriptor.digest), null);
  assert.deepEqual((await pull(cache, layer.descriptor.digest)).bytes, layer.bytes);
});

test('a blob request to an upstream that accepts and never answers ends with an error past the upstream timeout', {
  timeout: 180_000,
}, async (t) => {
  const { hostile, cache, img } = await setup(t, { timeout: '1s' });
  assert.equal((await fetch(`${cache.url}/v2/docker.io/library/app/manifests/1`)).status, 200);
  const layer = img.layers[0]!;
  hostile.lie(/^GET \/v2\/library\/app\/blobs\//, { kind: 'hang' }, 2);
  const r = await fetch(`${cache.url}/v2/docker.io/library/app/blobs/${layer.descriptor.digest}`);
  assert.equal(r.status, 502);
  assert.equal((await errorOf(r)).code, 'UNKNOWN');
  await noUploadsLeft(cache);
  assert.deepEqual((await pull(cache, layer.descriptor.digest)).bytes, layer.bytes);
});

test('a manifest request that the upstream redirects in a loop ends with a clear error', {
  timeout: 120_000,
}, async (t) => {
  const { hostile, cache } = await setup(t);
  hostile.lie(/^GET \/v2\/library\/app\/manifests\//, { kind: 'redirect-loop' });
  const r = await fetch(`${cache.url}/v2/docker.io/library/app/manifests/1`);
  assert.equal(r.status, 502);
  const e = await errorOf(r);
  assert.equal(e.code, 'UNKNOWN');
  assert.match(e.message, /redirect/i);
});
