import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestTag, type Digest } from '../../src/oci/digest.js';
import type { RepositoryName } from '../../src/oci/name.js';
import { signImage } from '../../src/sign/index.js';
import {
  makeImage,
  makeMultiArch,
  pushAsReferrer,
  pushImage,
  type TestImage,
  type TestIndex,
} from '../helpers/images.js';
import { bytesOf, errorOf } from '../helpers/oci-http.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

function keyPair(): { priv: KeyObject; pub: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { priv: privateKey, pub: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

interface Upstream {
  up: TestRegistry;
  dir: string;
  signed: TestImage;
  unsigned: TestImage;
  signedIndex: TestIndex;
  unsignedIndex: TestIndex;
  close(): Promise<void>;
}

/** An upstream registry holding signed and unsigned images and indexes under konard/ (docker.io/konard/… to the cache). */
async function upstream(label: string): Promise<Upstream> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-trust-cache-'));
  const key = keyPair();
  await writeFile(join(dir, 'hive.pub'), key.pub);
  const up = await startRegistry();
  const signed = await makeImage({ label: `${label}-signed` });
  const unsigned = await makeImage({ label: `${label}-unsigned` });
  const signedIndex = await makeMultiArch(`${label}-signed-index`);
  const unsignedIndex = await makeMultiArch(`${label}-unsigned-index`);
  await pushImage(up.url, 'konard/app', 'signed', signed);
  await pushImage(up.url, 'konard/app', 'unsigned', unsigned);
  await pushImage(up.url, 'konard/multi', 'signed', signedIndex);
  await pushImage(up.url, 'konard/multi', 'unsigned', unsignedIndex);
  const transport = { tlsVerify: false };
  await signImage(`docker://${up.host}/konard/app:signed`, key.priv, {
    identity: 'docker.io/konard/app:signed',
    transport,
  });
  await signImage(`docker://${up.host}/konard/multi:signed`, key.priv, {
    identity: 'docker.io/konard/multi:signed',
    transport,
  });
  return {
    up,
    dir,
    signed,
    unsigned,
    signedIndex,
    unsignedIndex,
    close: async () => {
      await up.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A cache of `u` whose trust rule covers docker.io/konard/** at the places `on` names. */
function cacheOf(u: Upstream, on: string[]): Promise<TestRegistry> {
  return startRegistry({
    upstreams: { 'docker.io': { url: u.up.url } },
    flows: [{ images: ['docker.io/konard/**'] }],
    trust: {
      keys: { hive: join(u.dir, 'hive.pub') },
      require: [{ images: ['docker.io/konard/**'], keys: ['hive'], identity: 'matchRepository', on }],
    },
  });
}

const get = (reg: TestRegistry, repo: string, ref: string) => fetch(`${reg.url}/v2/docker.io/${repo}/manifests/${ref}`);
const blob = (reg: TestRegistry, repo: string, d: Digest) => fetch(`${reg.url}/v2/docker.io/${repo}/blobs/${d}`);

/** Asserts storage holds nothing of `image`: no manifest, no tag, no layer or config, and no path that names them. */
async function assertNothingStored(reg: TestRegistry, repo: string, image: TestImage, tag?: string): Promise<void> {
  const r = reg.ctx.repo(`docker.io/${repo}` as RepositoryName);
  assert.equal(await r.hasManifest(image.digest), false, `manifest ${image.digest} is stored`);
  if (tag) assert.equal(await r.resolveTag(tag), null, `tag ${tag} is stored`);
  const hexes = [image.digest, image.config.descriptor.digest, ...image.layers.map((l) => l.descriptor.digest)].map(
    (d) => d.slice('sha256:'.length),
  );
  const files = await reg.files();
  assert.deepEqual(
    files.filter((f) => hexes.some((h) => f.includes(h))),
    [],
  );
  for (const l of image.layers) {
    const b = await blob(reg, repo, l.descriptor.digest as Digest);
    assert.notEqual(b.status, 200, `layer ${l.descriptor.digest} is served`);
    await b.arrayBuffer();
  }
}

test('trust at the cache: an unsigned image refused by tag is refused by digest too, and nothing of it is stored', async () => {
  const u = await upstream('by-tag');
  const cache = await cacheOf(u, ['cache']);
  try {
    const byTag = await get(cache, 'konard/app', 'unsigned');
    assert.equal(byTag.status, 403);
    assert.match(
      (await errorOf(byTag)).message,
      /docker\.io\/konard\/app:unsigned is not fetched: trust rule 1: .*no signatures found/,
    );
    // Warm: right after the refusal by tag, the digest is no way around it.
    const byDigest = await get(cache, 'konard/app', u.unsigned.digest);
    assert.equal(byDigest.status, 403);
    assert.match(
      (await errorOf(byDigest)).message,
      /docker\.io\/konard\/app@sha256:[0-9a-f]{64} is not fetched: trust rule 1/,
    );
    await assertNothingStored(cache, 'konard/app', u.unsigned, 'unsigned');
    // The signed image comes in by tag and by digest.
    const ok = await get(cache, 'konard/app', 'signed');
    assert.equal(ok.status, 200);
    assert.deepEqual(await bytesOf(ok), u.signed.manifest);
    assert.equal((await get(cache, 'konard/app', u.signed.digest)).status, 200);
  } finally {
    await cache.close();
    await u.close();
  }
});

test('trust at the cache: an unsigned image asked for by digest first is refused and nothing of it is stored', async () => {
  const u = await upstream('cold-digest');
  const cache = await cacheOf(u, ['cache']);
  try {
    const cold = await get(cache, 'konard/app', u.unsigned.digest);
    assert.equal(cold.status, 403);
    await assertNothingStored(cache, 'konard/app', u.unsigned);
    // A signed image by digest alone: its signature (for the repository) is found upstream.
    assert.equal((await get(cache, 'konard/app', u.signed.digest)).status, 200);
  } finally {
    await cache.close();
    await u.close();
  }
});

test('trust at the cache and on pull: a refused image leaves no manifest behind, so its layers are never fetched', async () => {
  const u = await upstream('pull-cache');
  const cache = await cacheOf(u, ['pull', 'cache']);
  try {
    assert.equal((await get(cache, 'konard/app', 'unsigned')).status, 403);
    await assertNothingStored(cache, 'konard/app', u.unsigned, 'unsigned');
    // The signed one is served with its signature stored beside it, so the pull check finds it here.
    assert.equal((await get(cache, 'konard/app', 'signed')).status, 200);
    assert.equal((await blob(cache, 'konard/app', u.signed.layers[0]!.descriptor.digest as Digest)).status, 200);
  } finally {
    await cache.close();
    await u.close();
  }
});

test('trust at the cache: children of an unsigned index are refused by digest, children of a signed one are served', async () => {
  const u = await upstream('index');
  const cache = await cacheOf(u, ['cache']);
  try {
    assert.equal((await get(cache, 'konard/multi', 'unsigned')).status, 403);
    const child = u.unsignedIndex.images[0]!;
    assert.equal((await get(cache, 'konard/multi', child.digest)).status, 403);
    assert.equal(
      await cache.ctx.repo('docker.io/konard/multi' as RepositoryName).hasManifest(u.unsignedIndex.digest),
      false,
    );
    for (const img of u.unsignedIndex.images) await assertNothingStored(cache, 'konard/multi', img);
    // The signature of the signed index covers its children.
    assert.equal((await get(cache, 'konard/multi', 'signed')).status, 200);
    const signedChild = u.signedIndex.images[0]!;
    assert.equal((await get(cache, 'konard/multi', signedChild.digest)).status, 200);
    assert.equal((await blob(cache, 'konard/multi', signedChild.layers[0]!.descriptor.digest as Digest)).status, 200);
  } finally {
    await cache.close();
    await u.close();
  }
});

test('trust at the cache: signatures come along and are served; an image posing as a referrer or an attachment tag is not', async () => {
  const u = await upstream('attach');
  const cache = await cacheOf(u, ['cache']);
  try {
    const smuggled = await makeImage({ label: 'attach-smuggled' });
    const referrer = await pushAsReferrer(u.up.url, 'konard/app', smuggled, u.signed);
    const att = `${digestTag(u.signed.digest)}.att`;
    await pushImage(u.up.url, 'konard/app', att, await makeImage({ label: 'attach-att' }));
    assert.equal((await get(cache, 'konard/app', 'signed')).status, 200);
    // The .sig is evidence: served to a client that asks for it (cosign, sluice verify), though it carries no signature itself.
    const sig = await get(cache, 'konard/app', `${digestTag(u.signed.digest)}.sig`);
    assert.equal(sig.status, 200);
    // An image is judged as an image, whatever it is attached as.
    assert.equal((await get(cache, 'konard/app', referrer)).status, 403);
    assert.equal((await get(cache, 'konard/app', att)).status, 403);
    const repo = cache.ctx.repo('docker.io/konard/app' as RepositoryName);
    assert.equal(await repo.hasManifest(referrer), false);
    assert.equal(await repo.resolveTag(att), null);
    await assertNothingStored(cache, 'konard/app', smuggled);
  } finally {
    await cache.close();
    await u.close();
  }
});

test('trust at the cache: the manifest is fetched from upstream once and verified as fetched, not asked for again', async () => {
  const u = await upstream('once');
  const proxy = await startFaultProxy(u.up.url);
  const cache = await startRegistry({
    upstreams: { 'docker.io': { url: proxy.url } },
    flows: [{ images: ['docker.io/konard/**'] }],
    trust: {
      keys: { hive: join(u.dir, 'hive.pub') },
      require: [{ images: ['docker.io/konard/**'], keys: ['hive'], identity: 'matchRepository', on: ['cache'] }],
    },
  });
  try {
    assert.equal((await get(cache, 'konard/app', 'signed')).status, 200);
    const image = proxy.seen.filter((s) => /^GET \/v2\/konard\/app\/manifests\/(signed|sha256:)/.test(s));
    assert.deepEqual(image, ['GET /v2/konard/app/manifests/signed'], proxy.seen.join('\n'));
    // The signature itself was still read from upstream.
    assert.ok(
      proxy.seen.some((s) => s.includes(`/manifests/${digestTag(u.signed.digest)}.sig`)),
      proxy.seen.join('\n'),
    );
  } finally {
    await cache.close();
    await proxy.close();
    await u.close();
  }
});
