import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf, digestTag } from '../../src/oci/digest.js';
import { parseManifest } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { isEvidence, MAX_SIGNATURE_BYTES, signImage } from '../../src/sign/index.js';
import { BUNDLE_MEDIA_TYPE, SIMPLE_SIGNING_MEDIA_TYPE } from '../../src/sign/types.js';
import { makeImage, pushAsReferrer, pushImage } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';
import { sluice } from '../helpers/sluice-cli.js';

function keyPair(): { priv: KeyObject; pub: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { priv: privateKey, pub: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

const d = (mediaType: string, size = 100, extra: Record<string, unknown> = {}) => ({
  mediaType,
  digest: digestOf(`${mediaType}${size}`),
  size,
  ...extra,
});
const manifest = (layers: object[], extra: Record<string, unknown> = {}) =>
  parseManifest(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: d(MediaType.OciConfig),
        layers,
        ...extra,
      }),
    ),
  );

test('isEvidence() is decided by the layers and artifact types, never by a tag', () => {
  assert.equal(isEvidence(manifest([d(SIMPLE_SIGNING_MEDIA_TYPE)])), true);
  assert.equal(isEvidence(manifest([d(BUNDLE_MEDIA_TYPE)], { artifactType: BUNDLE_MEDIA_TYPE })), true);
  assert.equal(isEvidence(manifest([d('application/vnd.dsse.envelope.v1+json')])), true);
  assert.equal(isEvidence(manifest([d('application/spdx+json', 5 * 1024 * 1024)])), true);
  // An image layer, alone or beside a signature, makes it an image; so does a "signature" too large to be one.
  assert.equal(isEvidence(manifest([d(MediaType.OciLayerGzip)])), false);
  assert.equal(isEvidence(manifest([d(SIMPLE_SIGNING_MEDIA_TYPE), d(MediaType.OciLayerGzip)])), false);
  assert.equal(isEvidence(manifest([d(SIMPLE_SIGNING_MEDIA_TYPE, MAX_SIGNATURE_BYTES + 1)])), false);
  assert.equal(isEvidence(manifest([])), false);
  // A referrers index lists only artifacts of those types.
  const index = (manifests: object[]) =>
    parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests })));
  assert.equal(isEvidence(index([d(MediaType.OciManifest, 500, { artifactType: BUNDLE_MEDIA_TYPE })])), true);
  assert.equal(
    isEvidence(
      index([d(MediaType.OciManifest, 500, { artifactType: BUNDLE_MEDIA_TYPE }), d(MediaType.OciManifest, 500)]),
    ),
    false,
  );
  assert.equal(isEvidence(index([])), false);
});

test('trust at pull: sluice verify succeeds against a registry that enforces the rule, by .sig tag and by bundle referrer', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-evidence-'));
  const key = keyPair();
  const pub = join(dir, 'hive.pub');
  await writeFile(pub, key.pub);
  // Pushed and signed before the rule is on (an anonymous signer could not read the unsigned image under it).
  const before = await startRegistry();
  const img = await makeImage({ label: 'evidence-sig' });
  await pushImage(before.url, 'prod/app', '1', img);
  await pushImage(before.url, 'prod/app', '2', await makeImage({ label: 'evidence-bundle' }));
  const transport = { tlsVerify: false };
  await signImage(`docker://${before.host}/prod/app:1`, key.priv, { identity: 'registry.test/prod/app:1', transport });
  await signImage(`docker://${before.host}/prod/app:2`, key.priv, {
    identity: 'registry.test/prod/app:2',
    transport,
    bundle: true,
  });
  const reg = await startRegistry(
    {
      http: { host: 'http://registry.test' },
      trust: { keys: { hive: pub }, require: [{ images: ['prod/**'], keys: ['hive'], on: ['pull'] }] },
    },
    before.root,
  );
  try {
    // The registry serves the images it judged and the evidence it judged them by.
    assert.equal((await fetch(`${reg.url}/v2/prod/app/manifests/1`)).status, 200);
    assert.equal((await fetch(`${reg.url}/v2/prod/app/manifests/${digestTag(img.digest)}.sig`)).status, 200);
    for (const tag of ['1', '2']) {
      const v = await sluice([
        'verify',
        '--key',
        pub,
        '--identity',
        `registry.test/prod/app:${tag}`,
        '--tls-verify=false',
        `docker://${reg.host}/prod/app:${tag}`,
      ]);
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stdout, /: verified\n/);
    }
  } finally {
    await reg.close();
    await before.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('trust at pull: an image pushed under a sha256-<hex>.sig tag is judged as an image, not served as evidence', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-evidence-'));
  await writeFile(join(dir, 'hive.pub'), keyPair().pub);
  const reg = await startRegistry({
    http: { host: 'http://registry.test' },
    trust: { keys: { hive: join(dir, 'hive.pub') }, require: [{ images: ['prod/**'], keys: ['hive'] }] },
  });
  try {
    const subject = await makeImage({ label: 'smuggle-subject' });
    await pushImage(reg.url, 'prod/app', '1', subject);
    const smuggled = await makeImage({ label: 'smuggle-image' });
    const tag = `${digestTag(subject.digest)}.sig`;
    await pushImage(reg.url, 'prod/app', tag, smuggled);
    const r = await fetch(`${reg.url}/v2/prod/app/manifests/${tag}`);
    assert.equal(r.status, 403);
    assert.equal((await fetch(`${reg.url}/v2/prod/app/manifests/${smuggled.digest}`)).status, 403);
  } finally {
    await reg.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('sluice copy under a trust check brings the signature along and leaves an image posing as a referrer behind', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-evidence-'));
  const key = keyPair();
  await writeFile(join(dir, 'hive.pub'), key.pub);
  const src = await startRegistry();
  const dst = await startRegistry();
  try {
    const img = await makeImage({ label: 'copy-evidence' });
    await pushImage(src.url, 'team/app', '1', img);
    await signImage(`docker://${src.host}/team/app:1`, key.priv, { transport: { tlsVerify: false } });
    const smuggled = await pushAsReferrer(src.url, 'team/app', await makeImage({ label: 'copy-smuggled' }), img);
    const cfg = join(dir, 'config.yml');
    await writeFile(
      cfg,
      `trust:\n  keys: {hive: ${join(dir, 'hive.pub')}}\n  require:\n    - images: ["${src.host}/team/*"]\n      keys: [hive]\n      on: [copy]\n`,
    );
    const r = await sluice([
      'copy',
      '-c',
      cfg,
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${src.host}/team/app:1`,
      `docker://${dst.host}/team/app:1`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await fetch(`${dst.url}/v2/team/app/manifests/${digestTag(img.digest)}.sig`)).status, 200);
    assert.equal((await fetch(`${dst.url}/v2/team/app/manifests/${smuggled}`)).status, 404);
    assert.match(r.stderr, /is attached to .* but is no signature, attestation or SBOM: not copied/);
  } finally {
    await dst.close();
    await src.close();
    await rm(dir, { recursive: true, force: true });
  }
});
