import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry.js';
import { startHostileUpstream, type Lie } from '../helpers/hostile-upstream.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { assertIntact } from '../helpers/oci-http.js';
import { sluice } from '../helpers/sluice-cli.js';

// `sluice copy` from a docker:// source that lies: the copy fails with one clear line, reads a bounded
// amount of the lie, and the destination never gets a lying blob or a manifest whose blobs are missing.

const HUGE = 400 << 20;

const cases: { name: string; match: RegExp; lie: Lie; says: RegExp }[] = [
  {
    name: 'a blob whose bytes do not match its digest',
    match: /^GET \/v2\/library\/app\/blobs\//,
    lie: { kind: 'corrupt' },
    says: /digest/i,
  },
  {
    name: 'an empty 200 for a blob',
    match: /^GET \/v2\/library\/app\/blobs\//,
    lie: { kind: 'empty' },
    says: /bytes|size|length|digest/i,
  },
  {
    name: 'an endless blob body',
    match: /^GET \/v2\/library\/app\/blobs\//,
    lie: { kind: 'endless' },
    says: /bytes|size|length|digest/i,
  },
  {
    name: 'a 400 MiB manifest without a length',
    match: /^GET \/v2\/library\/app\/manifests\//,
    lie: { kind: 'huge', bytes: HUGE, contentLength: false },
    says: /bound/,
  },
  {
    name: 'a 400 MiB manifest with its length',
    match: /^GET \/v2\/library\/app\/manifests\//,
    lie: { kind: 'huge', bytes: HUGE },
    says: /bound/,
  },
  {
    name: 'a 400 MiB error body',
    match: /^GET \/v2\/library\/app\/manifests\//,
    lie: { kind: 'status', status: 500, bodyBytes: HUGE, contentLength: false },
    says: /HTTP 500/,
  },
  { name: 'a 400 MiB token answer', match: /^GET \/token/, lie: { kind: 'huge', bytes: HUGE }, says: /token/ },
  {
    name: 'a redirect loop',
    match: /^GET \/v2\/library\/app\/manifests\//,
    lie: { kind: 'redirect-loop' },
    says: /redirect/i,
  },
];

for (const c of cases) {
  test(`sluice copy from a registry that sends ${c.name} fails with a clear message and stores nothing`, {
    timeout: 300_000,
  }, async (t) => {
    const up = await startRegistry();
    t.after(() => up.close());
    const hostile = await startHostileUpstream(up.url);
    t.after(() => hostile.close());
    const dest = await startRegistry();
    t.after(() => dest.close());
    const img = await makeImage({ label: `copy-${c.name}` });
    await pushImage(up.url, 'library/app', '1', img);
    if (c.match.source.includes('token')) {
      hostile.lie(/^GET \/v2\/$/, {
        kind: 'status',
        status: 401,
        headers: { 'www-authenticate': `Bearer realm="${hostile.url}/token",service="hostile"` },
      });
    }
    hostile.lie(c.match, c.lie);
    const r = await sluice([
      'copy',
      '--retry-times',
      '0',
      `docker://${hostile.host}/library/app:1`,
      `docker://${dest.host}/app:1`,
    ]);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, c.says);
    // One clear line, not a stack trace.
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.ok(hostile.lieBytesSent < 64 << 20, `copy read ${hostile.lieBytesSent >> 20} MiB of the lie`);
    assert.equal((await fetch(`${dest.url}/v2/app/manifests/1`)).status, 404);
    for (const l of img.layers) {
      if (c.lie.kind === 'corrupt' || c.lie.kind === 'empty' || c.lie.kind === 'endless')
        assert.equal((await fetch(`${dest.url}/v2/app/blobs/${l.descriptor.digest}`, { method: 'HEAD' })).status, 404);
    }
    // The truth still copies once the lies stop.
    hostile.rules.length = 0;
    const ok = await sluice(['copy', `docker://${hostile.host}/library/app:1`, `docker://${dest.host}/app:1`]);
    assert.equal(ok.code, 0, ok.stderr);
    await assertIntact(dest.url, 'app', '1', img);
  });
}

for (const contentLength of [true, false]) {
  test(`sluice copy from an oci-http: layout whose index.json is 400 MiB (${contentLength ? 'declared' : 'chunked'}) fails within the bound`, {
    timeout: 300_000,
  }, async (t) => {
    // Every answer is a lie here: nothing stands behind the harness.
    const hostile = await startHostileUpstream('http://127.0.0.1:9');
    t.after(() => hostile.close());
    hostile.lie(/\/layout\/(index\.json|oci-layout)$/, { kind: 'huge', bytes: HUGE, contentLength });
    const out = await mkdtemp(join(tmpdir(), 'sluice-oci-http-'));
    t.after(() => rm(out, { recursive: true, force: true }));
    const r = await sluice(['copy', `oci-http:${hostile.url}/layout:1`, `oci:${join(out, 'dest')}:1`]);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /bound/);
    assert.ok(hostile.lieBytesSent < 64 << 20, `copy read ${hostile.lieBytesSent >> 20} MiB of the lie`);
  });
}
