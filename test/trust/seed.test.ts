import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, makeMultiArch, pushImage } from '../helpers/images.js';
import { bytesOf, errorOf } from '../helpers/oci-http.js';
import { inspectRaw, scratch, skopeoMay } from '../helpers/clients.js';
import { needTools } from '../helpers/tools.js';
import { sluice } from '../helpers/sluice-cli.js';
import { signImage } from '../../src/sign/index.js';

function keyPair(): { priv: KeyObject; pub: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { priv: privateKey, pub: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

test('seed case: a signed multi-arch index mirrored for one platform keeps its digest and signature, verifies under its new name, and says plainly what is missing', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const dir = await mkdtemp(join(tmpdir(), 'sluice-seed-'));
  const key = keyPair();
  await writeFile(join(dir, 'hive.pub'), key.pub);
  const src = await startRegistry();
  const idx = await makeMultiArch('seed');
  await pushImage(src.url, 'team/hive', '1', idx);
  await signImage(`docker://${src.host}/team/hive:1`, key.priv, { transport: { tlsVerify: false } });
  // The mirror's name as signatures are judged there: http.host (else the Host a client asks).
  const m2 = await startRegistry({
    validation: { manifests: { indexes: { platforms: 'none' } } },
    trust: {
      keys: { hive: join(dir, 'hive.pub') },
      require: [
        {
          images: ['mirror/**'],
          keys: ['hive'],
          identity: { type: 'remapIdentity', prefix: 'localhost/mirror/hive', signedPrefix: `${src.host}/team/hive` },
        },
      ],
    },
    http: { host: 'http://localhost' },
  });
  const w = await scratch();
  try {
    const copy = await sluice([
      'copy',
      '--platform',
      'linux/amd64',
      '--with-referrers',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${src.host}/team/hive:1`,
      `docker://${m2.host}/mirror/hive:1`,
    ]);
    assert.equal(copy.code, 0, copy.stderr);
    // The index keeps its digest although two platforms are missing (skopeo reads the exact bytes).
    const raw = await inspectRaw(`docker://${m2.host}/mirror/hive:1`);
    assert.deepEqual(raw, idx.manifest);
    // The copied platform pulls with a real client; the signature verified under the mirror's name (remapIdentity).
    const ok = await skopeoMay([
      'copy',
      '--src-tls-verify=false',
      '--override-arch',
      'amd64',
      '--override-os',
      'linux',
      `docker://${m2.host}/mirror/hive:1`,
      `oci:${w.dir}/amd64:1`,
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    // The signature is evidence, so the mirror that enforces the rule serves it: sluice verify succeeds against the partial mirror.
    const verified = await sluice([
      'verify',
      '--key',
      join(dir, 'hive.pub'),
      '--identity-rule',
      `remapIdentity:${m2.host}/mirror/hive=${src.host}/team/hive`,
      '--tls-verify=false',
      `docker://${m2.host}/mirror/hive:1`,
    ]);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, /: verified\n/);
    // The missing platform gets the plain error.
    const arm = await skopeoMay([
      'copy',
      '--src-tls-verify=false',
      '--override-arch',
      'arm64',
      '--override-os',
      'linux',
      `docker://${m2.host}/mirror/hive:1`,
      `oci:${w.dir}/arm64:1`,
    ]);
    assert.notEqual(arm.code, 0);
    const plain = await fetch(`${m2.url}/v2/mirror/hive/manifests/${idx.images[1]!.digest}`);
    assert.equal(plain.status, 404);
    assert.match(
      (await errorOf(plain)).message,
      new RegExp(`linux/arm64/v8 of index ${idx.digest} is not stored in this registry`),
    );
    // An unsigned image under mirror/** is refused to skopeo with the reason.
    await pushImage(m2.url, 'mirror/other', '1', await makeImage({ label: 'unsigned' }));
    const refused = await skopeoMay(['inspect', '--raw', '--tls-verify=false', `docker://${m2.host}/mirror/other:1`]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /denied|DENIED/i);
    const body = await errorOf(await fetch(`${m2.url}/v2/mirror/other/manifests/1`));
    assert.match(body.message, /trust rule 1: .*no signatures found/);
    void bytesOf;
  } finally {
    await m2.close();
    await src.close();
    await w.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});

test('trust at the cache: an upstream image a rule covers is fetched only with a valid signature, which comes along', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-trust-cache-'));
  const key = keyPair();
  await writeFile(join(dir, 'hive.pub'), key.pub);
  const up = await startRegistry();
  const signed = await makeImage({ label: 'cache-signed' });
  const unsigned = await makeImage({ label: 'cache-unsigned' });
  await pushImage(up.url, 'konard/hive-mind', '1', signed);
  await pushImage(up.url, 'konard/hive-mind', '2', unsigned);
  await signImage(`docker://${up.host}/konard/hive-mind:1`, key.priv, {
    identity: 'docker.io/konard/hive-mind:1',
    transport: { tlsVerify: false },
  });
  const cache = await startRegistry({
    upstreams: { 'docker.io': { url: up.url } },
    flows: [{ images: ['docker.io/konard/hive-mind*'] }],
    trust: {
      keys: { hive: join(dir, 'hive.pub') },
      require: [{ images: ['docker.io/konard/**'], keys: ['hive'], identity: 'matchRepository', on: ['cache'] }],
    },
  });
  try {
    const ok = await fetch(`${cache.url}/v2/docker.io/konard/hive-mind/manifests/1`, {
      headers: { accept: signed.mediaType },
    });
    assert.equal(ok.status, 200);
    assert.deepEqual(await bytesOf(ok), signed.manifest);
    const bad = await fetch(`${cache.url}/v2/docker.io/konard/hive-mind/manifests/2`);
    assert.equal(bad.status, 403);
    assert.match(
      (await errorOf(bad)).message,
      /docker\.io\/konard\/hive-mind:2 is not fetched: trust rule 1: .*no signatures found/,
    );
    // Never tagged in the cache.
    assert.equal(await cache.ctx.repo('docker.io/konard/hive-mind' as never).resolveTag('2'), null);
  } finally {
    await cache.close();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  }
});
