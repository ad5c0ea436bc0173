import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestDaemon } from '../helpers/dockerd.js';
import { NOTATION_MANIFEST_HEX, notationTrustStores, pushSignedAlpine } from '../helpers/notation-fixture.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pull, sharedWorld, startDockerdWith, passthroughAll, tagsOf } from './fixture.js';

// Notation trust rules through real daemons: a host dockerd pulls docker.io through a Docker Hub stand-in (a Sluice)
// holding the alpine image notation-go signed, with its real JWS and COSE envelopes as referrers. sluice passthrough
// reads them from the registry the RepoDigest names and loads into an inner dockerd only what the rule's trust
// store vouches for.
interface World {
  hub: TestRegistry;
  host: TestDaemon;
  inner: TestDaemon;
  dir: string;
  stores: { alpine: string; wabbit: string };
}

async function setUp(): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-pt-notation-'));
  const stores = await notationTrustStores(dir);
  const hub = await startRegistry();
  // One image under three names: signed for the alpine store, signed but judged by another store, and unsigned.
  await pushSignedAlpine(hub.url, 'library/alpine', 'v2');
  await pushSignedAlpine(hub.url, 'library/wabbit', 'v2');
  await pushSignedAlpine(hub.url, 'library/plain', 'v2', false);
  const host = await startDockerdWith(['--registry-mirror', hub.url]);
  const inner = await startDockerdWith([]);
  for (const n of ['alpine', 'wabbit', 'plain']) await pull(host, `${n}:v2`);
  return { hub, host, inner, dir, stores };
}

const ready = sharedWorld(setUp, async (w) => {
  await Promise.all([w.host.stop(), w.inner.stop()]);
  await w.hub.close();
  await rm(w.dir, { recursive: true, force: true });
});

test('notation rules (on: passthrough) through real daemons: the image the trust store vouches for is loaded; another store and no signature are not', {
  timeout: 180_000,
}, async (t) => {
  const w = ready(t);
  if (!w) return;
  const cfg = join(w.dir, 'config.yml');
  await writeFile(
    cfg,
    'trust:\n' +
      `  trustStores: {"ca:alpine": ${w.stores.alpine}, "ca:wabbit-networks": ${w.stores.wabbit}}\n` +
      '  require:\n' +
      '    - images: ["docker.io/library/wabbit"]\n' +
      '      notation: {trustStores: ["ca:wabbit-networks"]}\n' +
      '      on: [passthrough]\n' +
      '    - images: ["docker.io/library/*"]\n' +
      '      notation: {trustStores: ["ca:alpine"], identities: ["x509.subject: O=Notary, CN=alpine"]}\n' +
      '      on: [passthrough]\n',
  );
  const r = await passthroughAll(w, ['-c', cfg]);
  assert.equal(r.code, 0, r.stderr);
  const e = Object.fromEntries(r.entries.map((x) => [x.reference, x]));
  assert.equal(e['alpine:v2']!.result, 'copied', `alpine:v2: ${e['alpine:v2']!.reason}`);
  assert.match(
    e['alpine:v2']!.reason,
    /signed: trust rule 2: allowed: .*notation signature by C=US, ST=WA, L=Seattle, O=Notary, CN=alpine \(trust store ca:alpine\)/,
  );
  assert.equal(e['wabbit:v2']!.decision, 'skip: not signed');
  assert.match(e['wabbit:v2']!.reason, /does not end at a certificate of trust store ca:wabbit-networks/);
  assert.equal(e['plain:v2']!.decision, 'skip: not signed');
  assert.match(e['plain:v2']!.reason, new RegExp(`no notation signatures found for sha256:${NOTATION_MANIFEST_HEX}`));
  const host = await tagsOf(w.host);
  const inner = await tagsOf(w.inner);
  assert.deepEqual(Object.keys(inner), ['alpine:v2']);
  assert.equal(inner['alpine:v2'], host['alpine:v2']);
});
