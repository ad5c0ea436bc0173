import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestDaemon } from '../helpers/dockerd.js';
import { makeImage, type TestImage } from '../helpers/images.js';
import {
  GITHUB_ISSUER,
  makeTestSigstore,
  pushKeylessBundle,
  pushKeylessSignature,
  releaseSigner,
  type TestSigstore,
} from '../helpers/keyless.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pull, pushAs, sharedWorld, startDockerdWith, passthroughAll, tagsOf } from './fixture.js';

// Keyless trust rules through real daemons: a host dockerd pulls docker.io through a Docker Hub stand-in (a Sluice)
// that holds keyless signatures of the test sigstore (test/helpers/keyless.ts), as a `.sig` tag and as bundle
// referrers; sluice passthrough reads them from the registry each RepoDigest names and loads into an inner dockerd
// only what the release workflow signed.
const HIVE = 'konard/hive-mind';
interface World {
  hub: TestRegistry;
  host: TestDaemon;
  inner: TestDaemon;
  dir: string;
  store: TestSigstore;
}

async function setUp(): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-pt-keyless-'));
  const store = makeTestSigstore(dir);
  const hub = await startRegistry();
  const img = (label: string) =>
    makeImage({ format: 'docker', label, layers: [{ 'base.txt': 'shared base\n' }, { 'app.txt': `${label}\n` }] });
  const images: Record<string, TestImage> = {};
  for (const n of ['sig', 'bundle', 'other', 'unsigned']) {
    images[n] = await img(`keyless-${n}`);
    await pushAs(hub.url, `library/${n}`, '1', images[n]!);
  }
  const subject = (i: TestImage) => ({ digest: i.digest, mediaType: i.mediaType, size: i.manifest.length });
  // The stand-in is Docker Hub for the host, so signatures name docker.io.
  await pushKeylessSignature(
    hub.url,
    'library/sig',
    images.sig!.digest,
    'docker.io/library/sig:1',
    store,
    releaseSigner(HIVE),
  );
  await pushKeylessBundle(
    hub.url,
    'library/bundle',
    subject(images.bundle!),
    'docker.io/library/bundle:1',
    store,
    releaseSigner(HIVE),
  );
  await pushKeylessBundle(
    hub.url,
    'library/other',
    subject(images.other!),
    'docker.io/library/other:1',
    store,
    releaseSigner('other/repo', 'refs/heads/main'),
  );
  const host = await startDockerdWith(['--registry-mirror', hub.url]);
  const inner = await startDockerdWith([]);
  for (const n of Object.keys(images)) await pull(host, `${n}:1`);
  return { hub, host, inner, dir, store };
}

const ready = sharedWorld(setUp, async (w) => {
  await Promise.all([w.host.stop(), w.inner.stop()]);
  await w.hub.close();
  await rm(w.dir, { recursive: true, force: true });
});

test("keyless rules (on: passthrough) through real daemons: the release workflow's .sig and bundle are loaded; another workflow and no signature are not", {
  timeout: 180_000,
}, async (t) => {
  const w = ready(t);
  if (!w) return;
  const cfg = join(w.dir, 'config.yml');
  const re = `^https://github\\\\.com/${HIVE}/\\\\.github/workflows/release\\\\.yml@refs/tags/`;
  await writeFile(
    cfg,
    `trust:\n  roots: {ours: ${w.store.rootPath}}\n  require:\n    - images: ["docker.io/library/*"]\n      identities: [{issuer: "${GITHUB_ISSUER}", subjectRegExp: "${re}"}]\n      roots: [ours]\n      on: [passthrough]\n`,
  );
  const r = await passthroughAll(w, ['-c', cfg]);
  assert.equal(r.code, 0, r.stderr);
  const e = Object.fromEntries(r.entries.map((x) => [x.reference, x]));
  for (const ok of ['sig:1', 'bundle:1']) {
    assert.equal(e[ok]!.result, 'copied', `${ok}: ${e[ok]!.reason}`);
    assert.match(
      e[ok]!.reason,
      /signed: trust rule 1: allowed: satisfied by .*signed keylessly by https:\/\/github\.com\/konard\/hive-mind\//,
    );
  }
  assert.match(e['bundle:1']!.reason, /referrer sha256:/);
  assert.equal(e['other:1']!.decision, 'skip: not signed');
  assert.match(
    e['other:1']!.reason,
    /referrer sha256:\w+: signed by https:\/\/github\.com\/other\/repo\/\.github\/workflows\/release\.yml@refs\/heads\/main .*but the rule wants subject matching .*\(its subject differs\)/,
  );
  assert.equal(e['unsigned:1']!.decision, 'skip: not signed');
  assert.match(e['unsigned:1']!.reason, /no signatures found for sha256:\w+/);
  const host = await tagsOf(w.host);
  const inner = await tagsOf(w.inner);
  assert.deepEqual(Object.keys(inner), ['bundle:1', 'sig:1']);
  assert.equal(inner['bundle:1'], host['bundle:1']);
  assert.equal(inner['sig:1'], host['sig:1']);
});
