import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry.js';
import { NOTATION_MANIFEST_HEX, notationTrustStores, pushSignedAlpine } from '../helpers/notation-fixture.js';
import { bytesOf, errorOf } from '../helpers/oci-http.js';
import { sluice } from '../helpers/sluice-cli.js';
import { buildMirrorJobs } from '../../src/registry/sync-setup.js';

// A real notation signature at pull and at the cache: the manifest notation-go signed (its oci-layout, pushed
// as it is, with its blobs) and its JWS and COSE envelopes attached as referrers, as `notation sign` attaches them.
const MT = 'application/vnd.oci.image.manifest.v1+json';

test('notation at pull: served with a signature from the named trust store, refused for another store; sluice verify --trust-policy', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-notation-'));
  const stores = await notationTrustStores(dir);
  const reg = await startRegistry({
    trust: {
      trustStores: { 'ca:alpine': stores.alpine, 'ca:wabbit-networks': stores.wabbit },
      require: [
        {
          images: ['alpine/**'],
          notation: { trustStores: ['ca:alpine'], identities: ['x509.subject: O=Notary, CN=alpine'] },
        },
        { images: ['wabbit/**'], notation: { trustStores: ['ca:wabbit-networks'] } },
        { images: ['audited/**'], notation: { trustStores: ['ca:wabbit-networks'], level: 'audit' } },
      ],
    },
  });
  try {
    const { manifest } = await pushSignedAlpine(reg.url, 'alpine/app', 'v2');
    await pushSignedAlpine(reg.url, 'wabbit/app', 'v2');
    const ok = await fetch(`${reg.url}/v2/alpine/app/manifests/v2`, { headers: { accept: MT } });
    assert.equal(ok.status, 200);
    assert.deepEqual(await bytesOf(ok), manifest);
    const no = await fetch(`${reg.url}/v2/wabbit/app/manifests/v2`, { headers: { accept: MT } });
    assert.equal(no.status, 403);
    assert.match(
      (await errorOf(no)).message,
      /trust rule 2: .*notation signature from trust store ca:wabbit-networks.*does not end at a certificate of trust store ca:wabbit-networks/,
    );
    // The same store at level audit (a config rule): authenticity is only logged, so the image is served.
    await pushSignedAlpine(reg.url, 'audited/app', 'v2');
    assert.equal((await fetch(`${reg.url}/v2/audited/app/manifests/v2`, { headers: { accept: MT } })).status, 200);
    const levels = join(dir, 'levels.yml');
    await writeFile(
      levels,
      `trust:\n  trustStores: {"ca:wabbit-networks": ${stores.wabbit}}\n  require:\n    - images: ["audited/**"]\n` +
        '      notation: {trustStores: ["ca:wabbit-networks"], level: audit, override: {revocation: skip}}\n',
    );
    const ex = await sluice(['policy', 'explain', '-c', levels, '--action', 'trust', 'audited/app:v2']);
    assert.equal(ex.code, 0, ex.stderr);
    assert.match(
      ex.stdout,
      /pull +trust rule 1: a notation signature from trust store ca:wabbit-networks by \* at level audit \{"revocation":"skip"\}/,
    );

    const policy = join(dir, 'trustpolicy.json');
    await writeFile(
      policy,
      JSON.stringify({
        version: '1.0',
        trustPolicies: [
          {
            name: 'alpine',
            registryScopes: [`${reg.host}/alpine/app`],
            signatureVerification: { level: 'strict' },
            trustStores: ['ca:alpine'],
            trustedIdentities: ['*'],
          },
          {
            name: 'others',
            registryScopes: ['*'],
            signatureVerification: { level: 'strict' },
            trustStores: ['ca:wabbit-networks'],
            trustedIdentities: ['*'],
          },
        ],
      }),
    );
    const v = await sluice([
      'verify',
      '--trust-policy',
      policy,
      '--truststore',
      join(dir, 'truststore'),
      '--tls-verify=false',
      `docker://${reg.host}/alpine/app:v2`,
    ]);
    assert.equal(v.code, 0, v.stderr);
    assert.match(
      v.stdout,
      /ok +referrer sha256:[0-9a-f]+: notation signature by C=US, ST=WA, L=Seattle, O=Notary, CN=alpine \(trust store ca:alpine\)/,
    );

    // Verification levels: a store that does not vouch for the signer fails permissive, and audit only logs it.
    const levelPolicy = (level: string) =>
      writeFile(
        policy,
        JSON.stringify({
          version: '1.0',
          trustPolicies: [
            {
              name: 'wabbit',
              registryScopes: [`${reg.host}/alpine/app`],
              signatureVerification: { level },
              trustStores: ['ca:wabbit-networks'],
              trustedIdentities: ['*'],
            },
          ],
        }),
      );
    const verifyAlpine = () =>
      sluice([
        'verify',
        '--trust-policy',
        policy,
        '--truststore',
        join(dir, 'truststore'),
        '--tls-verify=false',
        `docker://${reg.host}/alpine/app:v2`,
      ]);
    await levelPolicy('permissive');
    const strictish = await verifyAlpine();
    assert.equal(strictish.code, 1, strictish.stdout);
    assert.match(strictish.stdout, /does not end at a certificate of trust store ca:wabbit-networks/);
    await levelPolicy('audit');
    const audit = await verifyAlpine();
    assert.equal(audit.code, 0, audit.stdout + audit.stderr);
    assert.match(
      audit.stdout,
      /notation signature by C=US, ST=WA, L=Seattle, O=Notary, CN=alpine \(no trust store vouches for it\); level audit only logs: authenticity: its chain does not end at a certificate of trust store ca:wabbit-networks/,
    );
  } finally {
    await reg.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('notation at the cache, in a mirror job and in sluice copy -c: the store decides, and the signatures come along', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-notation-cache-'));
  const stores = await notationTrustStores(dir);
  const up = await startRegistry();
  await pushSignedAlpine(up.url, 'library/alpine', 'v2');
  const cache = await startRegistry({
    upstreams: { 'docker.io': { url: up.url } },
    flows: [{ images: ['docker.io/library/*'] }],
    trust: {
      trustStores: { 'ca:alpine': stores.alpine, 'ca:wabbit-networks': stores.wabbit },
      require: [
        { images: ['docker.io/library/alpine'], notation: { trustStores: ['ca:alpine'] }, on: ['cache', 'mirror'] },
        {
          images: ['docker.io/library/other'],
          notation: { trustStores: ['ca:wabbit-networks'] },
          on: ['cache', 'mirror'],
        },
      ],
    },
    mirrors: [
      { name: 'alpine', images: ['docker.io/library/alpine'] },
      { name: 'other', images: ['docker.io/library/other'] },
    ],
  });
  try {
    await pushSignedAlpine(up.url, 'library/other', 'v2');
    assert.equal(
      (await fetch(`${cache.url}/v2/docker.io/library/alpine/manifests/v2`, { headers: { accept: MT } })).status,
      200,
    );
    const no = await fetch(`${cache.url}/v2/docker.io/library/other/manifests/v2`, { headers: { accept: MT } });
    assert.equal(no.status, 403);
    assert.match((await errorOf(no)).message, /is not fetched: trust rule 2: .*ca:wabbit-networks/);

    const [alpineJob, otherJob] = buildMirrorJobs(cache.ctx, cache.ctx.config, {
      info: () => undefined,
      warn: () => undefined,
    });
    const a = await alpineJob!.run();
    assert.deepEqual(a.copied, ['docker.io/library/alpine:v2']);
    const refs = (await (
      await fetch(`${cache.url}/v2/docker.io/library/alpine/referrers/sha256:${NOTATION_MANIFEST_HEX}`)
    ).json()) as { manifests: { artifactType?: string }[] };
    assert.equal(refs.manifests.filter((m) => m.artifactType === 'application/vnd.cncf.notary.signature').length, 2);
    const o = await otherJob!.run();
    assert.deepEqual(o.copied, []);
    assert.match(
      o.refused[0]!.reason,
      /trust rule 2: .*does not end at a certificate of trust store ca:wabbit-networks/,
    );

    const cfg = join(dir, 'copy.yml');
    const store = (n: string) => join(dir, 'truststore/x509/ca', n);
    await writeFile(
      cfg,
      `trust:\n  trustStores: {"ca:alpine": ${store('alpine')}, "ca:wabbit-networks": ${store('wabbit-networks')}}\n  require:\n` +
        `    - images: ["${up.host}/library/alpine"]\n      notation: {trustStores: ["ca:alpine"]}\n      on: [copy]\n` +
        `    - images: ["${up.host}/library/other"]\n      notation: {trustStores: ["ca:wabbit-networks"]}\n      on: [copy]\n`,
    );
    const dst = await startRegistry();
    try {
      const c1 = await sluice([
        'copy',
        '-c',
        cfg,
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${up.host}/library/alpine:v2`,
        `docker://${dst.host}/a/alpine:v2`,
      ]);
      assert.equal(c1.code, 0, c1.stderr);
      const c2 = await sluice([
        'copy',
        '-c',
        cfg,
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${up.host}/library/other:v2`,
        `docker://${dst.host}/a/other:v2`,
      ]);
      assert.equal(c2.code, 1);
      assert.match(c2.stderr, /is refused: trust rule 2: .*ca:wabbit-networks/);
    } finally {
      await dst.close();
    }
  } finally {
    await cache.close();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  }
});
