import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeImage, pushBlob, pushImage, pushManifest, writeOciLayout, type TestImage } from '../helpers/images.js';
import { startDistribution } from '../helpers/clients.js';
import { needTools } from '../helpers/tools.js';
import { signImage } from '../../src/sign/sign.js';
import { verifyImage } from '../../src/sign/verify-image.js';
import { trustedKeyFromPem } from '../../src/sign/crypto.js';
import { signatureTag, MAX_SIGNATURE_BYTES } from '../../src/sign/discover.js';
import { evaluateRequirements } from '../../src/sign/verify.js';
import { VerificationCache } from '../../src/sign/cache.js';
import { buildPayload } from '../../src/sign/payload.js';
import { digestOf, digestTag } from '../../src/oci/digest.js';
import { openDestination, openSource } from '../../src/transport/index.js';
import { copyImage } from '../../src/copy/copy.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import {
  BUNDLE_MEDIA_TYPE,
  SIGNATURE_ANNOTATION,
  SIMPLE_SIGNING_MEDIA_TYPE,
  type TrustedKey,
} from '../../src/sign/types.js';
import type { VerifyImageOptions } from '../../src/sign/verify-image.js';

interface Pair {
  priv: KeyObject;
  pub: TrustedKey;
}
function pair(name: string): Pair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    priv: privateKey,
    pub: trustedKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString(), name),
  };
}

const T = { tlsVerify: false };
let reg: TestRegistry;
let img: TestImage;
let other: TestImage;
const alice = pair('alice.pub');
const bob = pair('bob.pub');
const mallory = pair('mallory.pub');

before(async () => {
  reg = await startRegistry();
  img = await makeImage({ label: 'signed' });
  other = await makeImage({ label: 'other' });
  await pushImage(reg.url, 'team/app', 'v1', img);
  await pushImage(reg.url, 'team/app', 'v2', other);
});
after(() => reg?.close());

const ref = (repo: string, tag: string) => `docker://${reg.host}/${repo}:${tag}`;
const verify = (image: string, opts: Omit<VerifyImageOptions, 'transport'>) =>
  verifyImage(image, { transport: T, cache: new VerificationCache(), ...opts });

async function getJson(
  path: string,
): Promise<
  { layers: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[] } & Record<
    string,
    unknown
  >
> {
  const r = await fetch(`${reg.url}${path}`, {
    headers: { accept: `${MediaType.OciManifest}, ${MediaType.OciIndex}` },
  });
  assert.equal(r.status, 200, path);
  return (await r.json()) as never;
}

test('sign then verify through a Sluice registry: the .sig tag holds cosign’s layout and the default rule accepts the tagged name', async () => {
  const r = await signImage(ref('team/app', 'v1'), alice.priv, { transport: T });
  assert.equal(r.digest, img.digest);
  assert.equal(r.identity, `${reg.host}/team/app:v1`);
  assert.equal(r.written, `tag ${signatureTag(img.digest)}`);
  const m = await getJson(`/v2/team/app/manifests/${signatureTag(img.digest)}`);
  assert.equal(m.mediaType, MediaType.OciManifest);
  assert.equal(m.layers.length, 1);
  assert.equal(m.layers[0]!.mediaType, SIMPLE_SIGNING_MEDIA_TYPE);
  assert.match(m.layers[0]!.annotations![SIGNATURE_ANNOTATION]!, /^ME[QUY]/);
  const payload = await (await fetch(`${reg.url}/v2/team/app/blobs/${m.layers[0]!.digest}`)).json();
  assert.deepEqual(payload, {
    critical: {
      identity: { 'docker-reference': `${reg.host}/team/app:v1` },
      image: { 'docker-manifest-digest': img.digest },
      type: 'cosign container image signature',
    },
    optional: null,
  });

  const v = await verify(ref('team/app', 'v1'), { keys: [alice.pub] });
  assert.equal(v.decision.allowed, true, v.decision.summary);
  assert.match(
    v.decision.summary,
    new RegExp(`satisfied by tag ${signatureTag(img.digest)}: signed by alice.pub .*exactly this image's name`),
  );
  // By digest, the repository is what must match.
  const byDigest = await verify(`docker://${reg.host}/team/app@${img.digest}`, { keys: [alice.pub] });
  assert.equal(byDigest.decision.allowed, true, byDigest.decision.summary);
  // Under another tag of the same digest, the default rule refuses and matchRepository accepts.
  await pushManifest(reg.url, 'team/app', 'latest', img.manifest, img.mediaType);
  const latest = await verify(ref('team/app', 'latest'), { keys: [alice.pub] });
  assert.equal(latest.decision.allowed, false);
  assert.match(
    latest.decision.summary,
    new RegExp(`signed for ${reg.host}/team/app:v1, this is ${reg.host}/team/app:latest`),
  );
  assert.equal(
    (await verify(ref('team/app', 'latest'), { keys: [alice.pub], identityRule: { type: 'matchRepository' } })).decision
      .allowed,
    true,
  );
});

test('a second signer appends a layer to the same .sig manifest, as cosign does; each key verifies on its own', async () => {
  await signImage(ref('team/app', 'v1'), bob.priv, { transport: T });
  // Signing the same payload again with a key that already signed it adds nothing (cosign's dupe detection).
  const again = await signImage(ref('team/app', 'v1'), bob.priv, { transport: T });
  assert.equal(again.added, false);
  const m = await getJson(`/v2/team/app/manifests/${signatureTag(img.digest)}`);
  assert.equal(m.layers.length, 2);
  const config = (await (
    await fetch(`${reg.url}/v2/team/app/blobs/${(m.config as { digest: string }).digest}`)
  ).json()) as { rootfs: { diff_ids: string[] } };
  assert.deepEqual(
    config.rootfs.diff_ids,
    m.layers.map((l) => l.digest),
  );
  for (const k of [alice, bob])
    assert.equal((await verify(ref('team/app', 'v1'), { keys: [k.pub] })).decision.allowed, true, k.pub.name);
  const none = await verify(ref('team/app', 'v1'), { keys: [mallory.pub] });
  assert.equal(none.decision.allowed, false);
  assert.match(none.decision.summary, /none of 2 signatures satisfies it: .*signed by another key, not mallory\.pub/);
  assert.match(none.decision.summary, /keys tried: mallory\.pub \(SHA256:/);
});

test('an unsigned image: "no signatures found" names the places looked at', async () => {
  const v = await verify(ref('team/app', 'v2'), { keys: [alice.pub] });
  assert.equal(v.decision.allowed, false);
  assert.match(
    v.decision.summary,
    new RegExp(
      `no signatures found for ${other.digest} \\(looked at tag ${signatureTag(other.digest)}, referrers of ${other.digest}, tag ${digestTag(other.digest)}\\)`,
    ),
  );
});

test("cosign 3's bundle form: a referrer with a DSSE statement, found through the referrers API", async () => {
  const r = await signImage(ref('team/app', 'v2'), bob.priv, { transport: T, bundle: true });
  assert.match(r.written, /^referrer sha256:/);
  const listed = (await (await fetch(`${reg.url}/v2/team/app/referrers/${other.digest}`)).json()) as {
    manifests: { artifactType: string; annotations?: Record<string, string> }[];
  };
  assert.equal(listed.manifests.length, 1);
  assert.equal(listed.manifests[0]!.artifactType, BUNDLE_MEDIA_TYPE);
  assert.equal(
    listed.manifests[0]!.annotations?.['dev.sigstore.bundle.predicateType'],
    'https://sigstore.dev/cosign/sign/v1',
  );
  const v = await verify(ref('team/app', 'v2'), { keys: [bob.pub] });
  assert.equal(v.decision.allowed, true, v.decision.summary);
  assert.match(v.decision.summary, /satisfied by referrer sha256:/);
  const wrong = await verify(ref('team/app', 'v2'), { keys: [alice.pub] });
  assert.match(wrong.decision.summary, /referrer sha256:[0-9a-f]+: signed by another key, not alice\.pub/);
});

test('a signature copied onto another repository keeps its name, so the copy is refused: signed for team/app, this is mirror/app', async () => {
  await pushImage(reg.url, 'mirror/app', 'v1', img);
  const sig = await fetch(`${reg.url}/v2/team/app/manifests/${signatureTag(img.digest)}`, {
    headers: { accept: MediaType.OciManifest },
  });
  const bytes = Buffer.from(await sig.arrayBuffer());
  const m = JSON.parse(bytes.toString());
  for (const l of [m.config, ...m.layers])
    await pushBlob(
      reg.url,
      'mirror/app',
      Buffer.from(await (await fetch(`${reg.url}/v2/team/app/blobs/${l.digest}`)).arrayBuffer()),
    );
  assert.equal(
    (await pushManifest(reg.url, 'mirror/app', signatureTag(img.digest), bytes, MediaType.OciManifest)).status,
    201,
  );
  const v = await verify(ref('mirror/app', 'v1'), { keys: [alice.pub] });
  assert.equal(v.decision.allowed, false);
  assert.match(v.decision.summary, new RegExp(`signed for ${reg.host}/team/app:v1, this is ${reg.host}/mirror/app:v1`));
  // remapIdentity is how a mirror accepts the upstream name.
  const remap = await verify(ref('mirror/app', 'v1'), {
    keys: [alice.pub],
    identityRule: { type: 'remapIdentity', prefix: `${reg.host}/mirror`, signedPrefix: `${reg.host}/team` },
  });
  assert.equal(remap.decision.allowed, true, remap.decision.summary);
});

async function pushSig(
  repo: string,
  tag: string,
  layers: { payload: Buffer; signature: string; size?: number }[],
): Promise<void> {
  const descs = [];
  for (const l of layers) {
    await pushBlob(reg.url, repo, l.payload);
    descs.push({
      mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
      digest: digestOf(l.payload),
      size: l.size ?? l.payload.length,
      annotations: { [SIGNATURE_ANNOTATION]: l.signature },
    });
  }
  const config = Buffer.from('{}');
  await pushBlob(reg.url, repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: digestOf(config), size: 2 },
      layers: descs,
    }),
  );
  const r = await pushManifest(reg.url, repo, tag, manifest, MediaType.OciManifest);
  assert.equal(r.status, 201, await r.text());
}

test('tampering is refused with the reason: changed payload, swapped digest, and bounded reads of huge or truncated blobs', async () => {
  const repo = 'tamper/app';
  const a = await makeImage({ label: 'tamper-a' });
  const b = await makeImage({ label: 'tamper-b' });
  await pushImage(reg.url, repo, 'a', a);
  await pushImage(reg.url, repo, 'b', b);
  await signImage(ref(repo, 'a'), alice.priv, { transport: T });
  const sigA = await getJson(`/v2/${repo}/manifests/${signatureTag(a.digest)}`);
  const payloadA = Buffer.from(
    await (await fetch(`${reg.url}/v2/${repo}/blobs/${sigA.layers[0]!.digest}`)).arrayBuffer(),
  );
  const signatureA = sigA.layers[0]!.annotations![SIGNATURE_ANNOTATION]!;

  // A's signature presented for B (digest swapped): the payload still names A's digest.
  await pushSig(repo, signatureTag(b.digest), [{ payload: payloadA, signature: signatureA }]);
  let v = await verify(ref(repo, 'b'), { keys: [alice.pub] });
  assert.match(
    v.decision.summary,
    new RegExp(`signature over another digest: signed ${a.digest}, this image is ${b.digest}`),
  );

  // The payload rewritten to name B: the signature no longer verifies.
  const forged = buildPayload(`${reg.host}/${repo}:b`, b.digest);
  await pushSig(repo, signatureTag(b.digest), [{ payload: forged, signature: signatureA }]);
  v = await verify(ref(repo, 'b'), { keys: [alice.pub] });
  assert.match(v.decision.summary, /signed by another key, not alice\.pub/);

  // A payload blob over the bound is not fetched at all.
  const huge = Buffer.concat([payloadA, Buffer.alloc(MAX_SIGNATURE_BYTES, 0x20)]);
  await pushSig(repo, signatureTag(b.digest), [{ payload: huge, signature: signatureA }]);
  v = await verify(ref(repo, 'b'), { keys: [alice.pub] });
  assert.match(
    v.decision.summary,
    new RegExp(`claims ${huge.length} bytes, over the ${MAX_SIGNATURE_BYTES}-byte bound`),
  );

  // A descriptor that claims fewer bytes than the blob has (truncation by the descriptor).
  await pushSig(repo, signatureTag(b.digest), [{ payload: payloadA, signature: signatureA, size: 20 }]);
  v = await verify(ref(repo, 'b'), { keys: [alice.pub] });
  assert.equal(v.decision.allowed, false);
  assert.match(v.decision.summary, /longer than its descriptor's 20 bytes|has \d+ bytes, its descriptor says 20/);

  // A signature manifest over the bound is not read: the registry's Content-Length refuses it.
  const pad = 'x'.repeat(MAX_SIGNATURE_BYTES);
  const cfg = Buffer.from('{}');
  const bigManifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: digestOf(cfg), size: 2 },
      layers: [],
      annotations: { pad },
    }),
  );
  const put = await pushManifest(reg.url, repo, signatureTag(b.digest), bigManifest, MediaType.OciManifest);
  assert.equal(put.status, 201);
  v = await verify(ref(repo, 'b'), { keys: [alice.pub] });
  assert.match(v.decision.summary, /is \d+ bytes \(Content-Length\), over the 1048576-byte bound; not read/);
});

test('warm verification comes from the cache: well under a millisecond per check', async () => {
  const cache = new VerificationCache();
  const v = await verifyImage(ref('team/app', 'v1'), { transport: T, keys: [alice.pub, bob.pub], cache });
  assert.equal(v.decision.allowed, true);
  const reqs = [
    {
      type: 'sigstoreSigned' as const,
      keys: [mallory.pub, bob.pub],
      signedIdentity: { type: 'matchRepoDigestOrExact' as const },
    },
  ];
  evaluateRequirements(v.image, v.discovery.candidates, reqs, { cache });
  const missesBefore = cache.misses;
  const n = 2000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++)
    assert.equal(evaluateRequirements(v.image, v.discovery.candidates, reqs, { cache }).allowed, true);
  const perCheckMs = Number(process.hrtime.bigint() - t0) / 1e6 / n;
  assert.equal(cache.misses, missesBefore, 'every warm check is served from the cache');
  assert.ok(perCheckMs < 0.5, `warm check took ${perCheckMs.toFixed(3)} ms`);
  // A cold check pays for ECDSA: the cache is what makes the warm one cheap.
  const t1 = process.hrtime.bigint();
  evaluateRequirements(v.image, v.discovery.candidates, reqs, { cache: new VerificationCache() });
  assert.ok(Number(process.hrtime.bigint() - t1) / 1e6 > perCheckMs);
});

test('an OCI layout: sign with --identity, verify with exactReference; rules that need a registry name say so', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-sign-layout-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const image = await makeImage({ label: 'layout' });
  await writeOciLayout(dir, [{ tag: 'v1', image }]);
  await assert.rejects(
    signImage(`oci:${dir}:v1`, alice.priv),
    /has no registry name: say which name the signature binds with --identity NAME/,
  );
  await signImage(`oci:${dir}:v1`, alice.priv, { identity: 'example.com/app:v1' });
  await signImage(`oci:${dir}:v1`, bob.priv, { identity: 'example.com/app:v1', bundle: true });
  const ok = await verify(`oci:${dir}:v1`, {
    keys: [alice.pub],
    identityRule: { type: 'exactReference', dockerReference: 'example.com/app:v1' },
  });
  assert.equal(ok.decision.allowed, true, ok.decision.summary);
  const okBundle = await verify(`oci:${dir}:v1`, {
    keys: [bob.pub],
    identityRule: { type: 'exactRepository', dockerRepository: 'example.com/app' },
  });
  assert.equal(okBundle.decision.allowed, true, okBundle.decision.summary);
  assert.match(okBundle.decision.summary, /referrer sha256:/);
  const dflt = await verify(`oci:${dir}:v1`, { keys: [alice.pub] });
  assert.equal(dflt.decision.allowed, false);
  assert.match(dflt.decision.summary, /has none \(an OCI layout\): use exactReference or exactRepository/);
  // The signature and referrer do not make the layout ambiguous: oci:DIR still names the one image.
  const bare = await verify(`oci:${dir}`, {
    keys: [alice.pub],
    identityRule: { type: 'exactReference', dockerReference: 'example.com/app:v1' },
  });
  assert.equal(bare.image.digest, image.digest);
});

test('Distribution 2.8 has no referrers API: the bundle goes into the sha256-<hex> fallback tag, and verify finds it there', async (t) => {
  if (!needTools(t, 'docker-registry')) return;
  const root = await mkdtemp(join(tmpdir(), 'sluice-sign-dist-'));
  const dist = await startDistribution(root);
  t.after(async () => {
    await dist.stop();
    await rm(root, { recursive: true, force: true });
  });
  const image = await makeImage({ label: 'dist' });
  // Distribution takes no monolithic POST uploads: copy the image in with Sluice's own engine.
  const layout = join(root, 'layout');
  await writeOciLayout(layout, [{ tag: '1', image }]);
  const src = await openSource(`oci:${layout}:1`);
  const dst = await openDestination(`docker://${dist.host}/lib/app:1`, T);
  await copyImage(src, dst);
  await Promise.all([src.close(), dst.close()]);
  const r = await signImage(`docker://${dist.host}/lib/app:1`, alice.priv, { transport: T, bundle: true });
  const idx = (await (
    await fetch(`${dist.url}/v2/lib/app/manifests/${digestTag(image.digest)}`, {
      headers: { accept: MediaType.OciIndex },
    })
  ).json()) as { manifests: { digest: string; artifactType: string }[] };
  assert.deepEqual(
    idx.manifests.map((m) => [m.digest, m.artifactType]),
    [[r.written.replace('referrer ', ''), BUNDLE_MEDIA_TYPE]],
  );
  const v = await verify(`docker://${dist.host}/lib/app:1`, { keys: [alice.pub] });
  assert.equal(v.decision.allowed, true, v.decision.summary);
  // And the .sig form next to it: both are found, each judged.
  await signImage(`docker://${dist.host}/lib/app:1`, bob.priv, { transport: T });
  const both = await verify(`docker://${dist.host}/lib/app:1`, { keys: [bob.pub] });
  assert.equal(both.decision.allowed, true, both.decision.summary);
  assert.equal(both.discovery.candidates.length, 2);
  assert.deepEqual(both.discovery.candidates.map((c) => c.kind).sort(), ['bundle', 'simple-signing']);
});
