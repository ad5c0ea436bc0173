import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { basic, startAuthRegistry, USERS } from '../auth/fixture.js';
import { makeImage, makeMultiArch, pushImage } from '../helpers/images.js';
import { bytesOf, errorOf } from '../helpers/oci-http.js';
import { signImage } from '../../src/sign/index.js';
import { startRegistry } from '../helpers/registry.js';

function keyPair(): { priv: KeyObject; pub: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { priv: privateKey, pub: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** The status of a GET sent with a chosen Host header (fetch does not let a caller set it). */
function statusWithHost(url: string, host: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const r = request(url, { headers: { ...headers, host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    r.on('error', reject);
    r.end();
  });
}

test('trust at pull: an image a rule covers is served only with a signature by the required key for its name', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-trust-'));
  const good = keyPair();
  const other = keyPair();
  await writeFile(join(dir, 'hive.pub'), good.pub);
  const f = await startAuthRegistry({
    access: {
      rules: [
        // bob only pulls; everyone else may push (the test pushes anonymously; alice signs what is there).
        { repos: ['**'], who: ['bob'], allow: ['pull'], deny: ['push', 'overwrite', 'delete'] },
        { repos: ['**'], who: ['*'], allow: ['pull', 'push', 'overwrite'] },
      ],
    },
    // Tokens from this test server at the address clients reach it; http.host names it for signatures only.
    auth: { issuer: { realmfromhost: true } },
    // The registry's own name, which signatures of local repositories must carry (never a request's Host).
    config: {
      http: { host: 'http://registry.test' },
      trust: {
        keys: { hive: join(dir, 'hive.pub') },
        require: [{ name: 'prod signed', images: ['prod/**'], keys: ['hive'] }],
      },
    },
  });
  const reg = f.reg;
  const t = { tlsVerify: false, creds: `alice:${USERS.alice}` };
  const as = (name: string) => ({ transport: t, identity: `registry.test/${name}` });
  const alice = { authorization: basic('alice', USERS.alice) };
  const bob = { authorization: basic('bob', USERS.bob) };
  const push = (repo: string, tag: string, image: Parameters<typeof pushImage>[3]) =>
    pushImage(reg.url, repo, tag, image);
  try {
    const img = await makeImage({ label: 'trust' });
    await push('prod/app', '1', img);
    await push('dev/app', '1', img);
    // No rule covers dev/**.
    assert.equal((await fetch(`${reg.url}/v2/dev/app/manifests/1`, { headers: bob })).status, 200);
    const unsigned = await fetch(`${reg.url}/v2/prod/app/manifests/1`, { headers: bob });
    // A builder who may push here (alice) reads what is there, to sign it; HEAD shows only the digest; an anonymous GET is judged.
    assert.equal((await fetch(`${reg.url}/v2/prod/app/manifests/1`)).status, 403);
    assert.equal((await fetch(`${reg.url}/v2/prod/app/manifests/1`, { headers: alice })).status, 200);
    assert.equal((await fetch(`${reg.url}/v2/prod/app/manifests/1`, { method: 'HEAD', headers: bob })).status, 200);
    assert.equal(unsigned.status, 403);
    const e = await errorOf(unsigned);
    assert.equal(e.code, 'DENIED');
    assert.match(e.message, /prod\/app:1 is refused: trust rule 1 "prod signed"/);
    // Signed by another key: still refused, and the message says so.
    await signImage(`docker://${reg.host}/prod/app:1`, other.priv, as('prod/app:1'));
    const wrongKey = await errorOf(await fetch(`${reg.url}/v2/prod/app/manifests/1`, { headers: bob }));
    assert.match(wrongKey.message, /hive/);
    // Signed by the required key for this name: served, by tag and by digest.
    await signImage(`docker://${reg.host}/prod/app:1`, good.priv, as('prod/app:1'));
    const ok = await fetch(`${reg.url}/v2/prod/app/manifests/1`, { headers: { ...bob, accept: img.mediaType } });
    assert.equal(ok.status, 200);
    assert.deepEqual(await bytesOf(ok), img.manifest);
    assert.equal((await fetch(`${reg.url}/v2/prod/app/manifests/${img.digest}`, { headers: bob })).status, 200);
    // The Host a client sends names nothing here: the image is judged as registry.test/prod/app under any Host.
    assert.equal(await statusWithHost(`${reg.url}/v2/prod/app/manifests/1`, 'elsewhere.test', bob), 200);
    // Another tag of the same digest is not what was signed (matchRepoDigestOrExact names the tag), even right after the approval above.
    await push('prod/app', '2', img);
    const otherTag = await fetch(`${reg.url}/v2/prod/app/manifests/2`, { headers: bob });
    assert.equal(otherTag.status, 403);
    assert.match((await errorOf(otherTag)).message, /prod\/app:2 is refused: .*prod\/app:1/);
    // The signature copied onto another repository names prod/app, not prod/copy: refused.
    await push('prod/copy', '1', img);
    const sigTag = `sha256-${img.digest.slice(7)}.sig`;
    const sig = await fetch(`${reg.url}/v2/prod/app/manifests/${sigTag}`, {
      headers: { ...alice, accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    const sigBytes = await bytesOf(sig);
    const sigManifest = JSON.parse(sigBytes.toString()) as { config: { digest: string }; layers: { digest: string }[] };
    for (const d of [sigManifest.config.digest, ...sigManifest.layers.map((l) => l.digest)]) {
      const b = await bytesOf(await fetch(`${reg.url}/v2/prod/app/blobs/${d}`, { headers: alice }));
      const up = await fetch(`${reg.url}/v2/prod/copy/blobs/uploads/?digest=${d}`, {
        method: 'POST',
        body: b,
        headers: alice,
      });
      assert.equal(up.status, 201);
    }
    assert.equal(
      (
        await fetch(`${reg.url}/v2/prod/copy/manifests/${sigTag}`, {
          method: 'PUT',
          headers: { ...alice, 'content-type': sig.headers.get('content-type')! },
          body: sigBytes,
        })
      ).status,
      201,
    );
    const copied = await errorOf(await fetch(`${reg.url}/v2/prod/copy/manifests/1`, { headers: bob }));
    assert.match(copied.message, /prod\/app/);
    // A multi-arch index: its signature covers the children pulled by digest.
    const idx = await makeMultiArch('trust');
    await push('prod/multi', '1', idx);
    assert.equal(
      (await fetch(`${reg.url}/v2/prod/multi/manifests/${idx.images[0]!.digest}`, { headers: bob })).status,
      403,
    );
    await signImage(`docker://${reg.host}/prod/multi:1`, good.priv, as('prod/multi:1'));
    assert.equal(
      (await fetch(`${reg.url}/v2/prod/multi/manifests/1`, { headers: { ...bob, accept: idx.mediaType } })).status,
      200,
    );
    assert.equal(
      (
        await fetch(`${reg.url}/v2/prod/multi/manifests/${idx.images[0]!.digest}`, {
          headers: { ...bob, accept: idx.images[0]!.mediaType },
        })
      ).status,
      200,
    );
  } finally {
    await f.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('trust at pull: concurrent pulls that find no approval wait for one signature check, not one each', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-trust-'));
  const good = keyPair();
  await writeFile(join(dir, 'hive.pub'), good.pub);
  // Pushed and signed before the rule is on (an anonymous signer could not read the unsigned image under it).
  const before = await startRegistry();
  const img = await makeImage({ label: 'herd' });
  await pushImage(before.url, 'prod/herd', '1', img);
  // The name it is signed for is the one the enforcing registry is configured to be (http.host).
  await signImage(`docker://${before.host}/prod/herd:1`, good.priv, {
    transport: { tlsVerify: false },
    identity: 'registry.test/prod/herd:1',
  });
  const root = before.root;
  const reg = await startRegistry(
    {
      http: { host: 'http://registry.test' },
      trust: { keys: { hive: join(dir, 'hive.pub') }, require: [{ images: ['prod/**'], keys: ['hive'] }] },
    },
    root,
  );
  try {
    // Counted where the registry calls it: the check that reads signatures from storage.
    const trust = reg.ctx.trust!;
    const check = trust.check.bind(trust);
    let checks = 0;
    trust.check = (...args: Parameters<typeof check>) => {
      checks++;
      return check(...args);
    };
    const codes = await Promise.all(
      Array.from({ length: 16 }, async () => (await fetch(`${reg.url}/v2/prod/herd/manifests/1`)).status),
    );
    assert.deepEqual(new Set(codes), new Set([200]));
    assert.equal(checks, 1);
  } finally {
    await reg.close();
    await before.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("trust at pull: a signature for another registry's name is refused whatever Host the client sends", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-trust-'));
  const good = keyPair();
  await writeFile(join(dir, 'hive.pub'), good.pub);
  const before = await startRegistry();
  const img = await makeImage({ label: 'evil-host' });
  await pushImage(before.url, 'prod/app', '1', img);
  // A genuine signature by the trusted key, but made for evil.example's prod/app, not this registry's.
  await signImage(`docker://${before.host}/prod/app:1`, good.priv, {
    transport: { tlsVerify: false },
    identity: 'evil.example/prod/app:1',
  });
  const trust = {
    keys: { hive: join(dir, 'hive.pub') },
    require: [{ images: ['prod/**'], keys: ['hive'], identity: 'matchRepository' }],
  };
  const reg = await startRegistry({ http: { host: 'https://registry.test' }, trust }, before.root);
  try {
    assert.equal(await statusWithHost(`${reg.url}/v2/prod/app/manifests/1`, 'evil.example'), 403);
    assert.equal(await statusWithHost(`${reg.url}/v2/prod/app/manifests/${img.digest}`, 'evil.example'), 403);
    assert.equal(await statusWithHost(`${reg.url}/v2/prod/app/manifests/1`, 'registry.test'), 403);
  } finally {
    await reg.close();
    await before.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("trust at pull: a rule that judges local names by the registry's own name does not start without http.host", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-trust-'));
  await writeFile(join(dir, 'hive.pub'), keyPair().pub);
  const keys = { hive: join(dir, 'hive.pub') };
  try {
    // A registry that does start is closed at once, so a failing check cannot leave it holding the process.
    const started = startRegistry({
      trust: { keys, require: [{ name: 'prod', images: ['prod/**'], keys: ['hive'], identity: 'matchRepository' }] },
    });
    await assert.rejects(
      started.then(async (r) => {
        await r.close();
        return 'started';
      }),
      /trust\.require rule 1 "prod": identity matchRepository judges local repositories \("prod\/\*\*"\) by this registry's own name, and http\.host is not set: set http\.host/,
    );
    // Rules that name what they accept, or cover only names with a registry host, or only other places, need no name of their own.
    for (const rule of [
      {
        images: ['prod/**'],
        keys: ['hive'],
        identity: { type: 'exactRepository', dockerRepository: 'registry.test/prod/app' },
      },
      { images: ['docker.io/konard/**'], keys: ['hive'], identity: 'matchRepository' },
      { images: ['prod/**'], keys: ['hive'], on: ['cache', 'mirror'] },
    ]) {
      const reg = await startRegistry({ trust: { keys, require: [rule] } });
      await reg.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
