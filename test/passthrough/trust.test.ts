import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { PassthroughResult } from '../../src/passthrough/run.js';
import { signImage } from '../../src/sign/index.js';
import type { TestDaemon } from '../helpers/dockerd.js';
import { makeImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { sluice } from '../helpers/sluice-cli.js';
import {
  clearImages,
  loadLocal,
  pull,
  pushAs,
  sharedWorld,
  startDockerdWith,
  passthroughAll,
  tagsOf,
} from './fixture.js';

// Passthrough honours signature requirements: the host daemon holds no signatures, so they are read
// from the registry each RepoDigest names (here a Docker Hub stand-in the host pulls docker.io through).
interface World {
  hub: TestRegistry;
  host: TestDaemon;
  inner: TestDaemon;
  dir: string;
  /** Public key files: the required key and another one. */
  keys: { hive: string; other: string };
  hostTags: Record<string, string>;
}

function keyPair(): { priv: KeyObject; pub: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { priv: privateKey, pub: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

async function setUp(): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-pt-trust-'));
  const hive = keyPair();
  const other = keyPair();
  const keys = { hive: join(dir, 'hive.pub'), other: join(dir, 'other.pub') };
  await writeFile(keys.hive, hive.pub);
  await writeFile(keys.other, other.pub);
  const hub = await startRegistry();
  const img = (label: string) =>
    makeImage({ format: 'docker', label, layers: [{ 'base.txt': 'shared base\n' }, { 'app.txt': `${label}\n` }] });
  const names = ['signed', 'unsigned', 'otherkey', 'elsewhere'];
  for (const n of names) await pushAs(hub.url, `library/${n}`, '1', await img(n));
  await pushAs(hub.url, 'konard/free', '1', await img('free'));
  const sign = (repo: string, priv: KeyObject, identity: string) =>
    signImage(`docker://${hub.host}/${repo}:1`, priv, { identity, transport: { tlsVerify: false } });
  // The stand-in is Docker Hub for the host, so signatures bind docker.io names.
  await sign('library/signed', hive.priv, 'docker.io/library/signed:1');
  await sign('library/otherkey', other.priv, 'docker.io/library/otherkey:1');
  // The right key, but made for another image's name: a signature copied from elsewhere.
  await sign('library/elsewhere', hive.priv, 'docker.io/library/signed:1');

  const host = await startDockerdWith(['--registry-mirror', hub.url]);
  const inner = await startDockerdWith([]);
  for (const n of names) await pull(host, `${n}:1`);
  await pull(host, 'konard/free:1');
  // The signed image under a name it was never pulled by: no RepoDigest ties the name to the signature.
  await host.docker(['tag', 'signed:1', 'retagged:1']);
  await loadLocal(host, await img('built'), 'built:1');
  return { hub, host, inner, dir, keys, hostTags: await tagsOf(host) };
}

const ready = sharedWorld(setUp, async (w) => {
  await Promise.all([w.host.stop(), w.inner.stop()]);
  await w.hub.close();
  await rm(w.dir, { recursive: true, force: true });
});

function byRef(r: PassthroughResult): Record<string, { decision: string; reason: string; result?: string }> {
  return Object.fromEntries(r.entries.map((e) => [e.reference, e]));
}

test('trust rules (on: passthrough) from -c: only the image signed by the required key for its name is loaded; the others say why', {
  timeout: 180_000,
}, async (t) => {
  const w = ready(t);
  if (!w) return;
  const cfg = join(w.dir, 'config.yml');
  await writeFile(
    cfg,
    `trust:\n  keys: {hive: ${w.keys.hive}}\n  require:\n    - images: ["docker.io/library/*"]\n      keys: [hive]\n      on: [passthrough]\n`,
  );
  const r = await passthroughAll(w, ['-c', cfg]);
  assert.equal(r.code, 0, r.stderr);
  const e = byRef(r);
  assert.equal(e['signed:1']!.decision, 'copy');
  assert.equal(e['signed:1']!.result, 'copied');
  assert.match(e['signed:1']!.reason, /signed: trust rule 1: allowed: satisfied by .*signed by hive/);
  // No rule covers konard/*: copied without a look at signatures.
  assert.equal(e['konard/free:1']!.decision, 'copy');
  assert.doesNotMatch(e['konard/free:1']!.reason, /sign/);
  assert.equal(e['unsigned:1']!.decision, 'skip: not signed');
  assert.match(
    e['unsigned:1']!.reason,
    /trust rule 1: refused by requirement "sigstoreSigned by hive .*": no signatures found for sha256:\w+ \(looked at tag sha256-\w+\.sig, .*\); keys tried: hive \(SHA256:/,
  );
  assert.equal(e['otherkey:1']!.decision, 'skip: not signed');
  assert.match(e['otherkey:1']!.reason, /signed by another key, not hive \(SHA256:/);
  assert.equal(e['elsewhere:1']!.decision, 'skip: not signed');
  assert.match(e['elsewhere:1']!.reason, /signed by hive .* over this digest, but .*docker\.io\/library\/signed:1/);
  assert.equal(e['retagged:1']!.decision, 'skip: not signed');
  assert.match(e['retagged:1']!.reason, /no registry digest for docker\.io\/library\/retagged/);
  assert.match(e['built:1']!.reason, /no registry digest for docker\.io\/library\/built/);
  // The JSON carries the details: the digest looked at, the requirement, the keys, each signature's verdict.
  const details = r.entries.find((x) => x.reference === 'otherkey:1')!.signatures!;
  assert.equal(details.allowed, false);
  assert.equal(details.checked.length, 1);
  const result = details.checked[0]!.decision!.results[0]!;
  assert.match(result.keysTried[0]!, /^hive \(SHA256:/);
  assert.equal(result.signatures.length, 1);
  assert.match(result.signatures[0]!.where, /tag sha256-\w+\.sig/);
  const inner = await tagsOf(w.inner);
  assert.deepEqual(Object.keys(inner), ['konard/free:1', 'signed:1']);
  assert.equal(inner['signed:1'], w.hostTags['signed:1']);
});

test('--policy containers-policy.json: the dry-run table shows the refusals with their reason, and a rule for another place does not apply', {
  timeout: 180_000,
}, async (t) => {
  const w = ready(t);
  if (!w) return;
  const policy = join(w.dir, 'policy.json');
  await writeFile(
    policy,
    JSON.stringify({
      default: [{ type: 'insecureAcceptAnything' }],
      transports: {
        docker: {
          'docker.io/library': [
            { type: 'sigstoreSigned', keyPath: w.keys.hive, signedIdentity: { type: 'matchRepository' } },
          ],
        },
      },
    }),
  );
  await clearImages(w.inner);
  const dry = await sluice(
    [
      'passthrough',
      '--dry-run',
      '--mode',
      'all',
      '--policy',
      policy,
      '--from',
      w.host.host,
      '--to',
      w.inner.host,
      '--upstream',
      `docker.io=${w.hub.url}`,
    ],
    { DOCKER_HOST: '' },
  );
  assert.equal(dry.code, 0, dry.stderr);
  const row = (ref: string) => dry.stdout.split('\n').find((l) => l.startsWith(`${ref} `)) ?? '';
  assert.match(
    row('signed:1'),
    /^signed:1\s+copy\s+mode all .*; signed: .*policy\.json: allowed \(policy scope docker:docker\.io\/library\): satisfied/,
  );
  assert.match(
    row('unsigned:1'),
    /^unsigned:1\s+skip: not signed\s+not signed as required: .*policy\.json: refused by requirement "sigstoreSigned by .*hive\.pub with matchRepository" \(policy scope docker:docker\.io\/library\): no signatures found/,
  );
  assert.match(row('otherkey:1'), /skip: not signed\s+.*signed by another key/);
  // matchRepository: a signature for docker.io/library/signed does not cover library/elsewhere.
  assert.match(row('elsewhere:1'), /skip: not signed\s+.*signed for docker\.io\/library\/signed/);
  assert.match(row('konard/free:1'), /^konard\/free:1\s+copy\s+mode all copies every tagged image$/);
  assert.match(dry.stdout, /would copy 2 of 7 host tags/);
  assert.deepEqual(await tagsOf(w.inner), {});

  const r = await passthroughAll(w, ['--policy', policy]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(Object.keys(await tagsOf(w.inner)), ['konard/free:1', 'signed:1']);

  // The other key is trusted here, so otherkey passes and signed does not.
  await writeFile(policy, JSON.stringify({ default: [{ type: 'sigstoreSigned', keyPath: w.keys.other }] }));
  const swapped = byRef(await passthroughAll(w, ['--policy', policy]));
  assert.equal(swapped['otherkey:1']!.result, 'copied');
  assert.equal(swapped['signed:1']!.decision, 'skip: not signed');
  assert.match(swapped['konard/free:1']!.reason, /no signatures found/);

  // Trust rules for other places leave passthrough alone.
  const cfg = join(w.dir, 'pull-only.yml');
  await writeFile(
    cfg,
    `trust:\n  keys: {hive: ${w.keys.hive}}\n  require:\n    - images: ["docker.io/**"]\n      keys: [hive]\n      on: [pull, copy]\n`,
  );
  const pullOnly = await passthroughAll(w, ['-c', cfg, '--dry-run']);
  assert.equal(pullOnly.entries.filter((x) => x.decision === 'copy').length, 7);
});
