import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { bytesOf, errorOf } from '../helpers/oci-http.js';
import { sluice } from '../helpers/sluice-cli.js';
import {
  GITHUB_ISSUER,
  makeTestSigstore,
  pushKeylessSignature,
  releaseSigner,
  type TestSigstore,
} from '../helpers/keyless.js';
import { buildMirrorJobs } from '../../src/registry/sync-setup.js';
import { Trust } from '../../src/registry/trust-setup.js';
import { configGate } from '../../src/passthrough/signatures.js';
import { readTrustedRoot, verifyKeyless } from '../../src/sign/index.js';
import { buildPayload } from '../../src/sign/payload.js';
import { digestOf, digestTag } from '../../src/oci/digest.js';
import { parseReference } from '../../src/oci/reference.js';
import { openSource } from '../../src/transport/index.js';
import type { SignatureCandidate } from '../../src/sign/types.js';

// Keyless rules at every place images move, with a private sigstore made here (a CA and a log key:
// test/helpers/keyless.ts): the images must be ones whose manifests we hold, which no published keyless
// signature offers. The published ones are verified in test/sign/keyless.test.ts.
const HIVE = 'konard/hive-mind';
const OTHER = 'other/repo';
const hiveRule = {
  issuer: GITHUB_ISSUER,
  subjectRegExp: `^https://github\\.com/${HIVE}/\\.github/workflows/.*@refs/tags/.*$`,
};

function candidate(payload: Buffer, a: Record<string, string>): SignatureCandidate {
  return {
    kind: 'simple-signing',
    where: 'tag',
    id: digestOf(JSON.stringify(a)),
    payload,
    signature: a['dev.cosignproject.cosign/signature']!,
    certificate: a['dev.sigstore.cosign/certificate']!,
    rekorBundle: a['dev.sigstore.cosign/bundle']!,
  };
}

async function withStore<T>(fn: (store: TestSigstore, dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-keyless-'));
  try {
    return await fn(makeTestSigstore(dir), dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('test CA: a valid keyless signature verifies; expired at the logged time, another log key, another CA are refused', () =>
  withStore(async (store, dir) => {
    const root = readTrustedRoot(store.rootPath, 'test-root');
    const payload = buildPayload('docker.io/konard/hive-mind:1', digestOf('m'));
    const ok = verifyKeyless(candidate(payload, store.sign(payload, releaseSigner(HIVE))), root);
    assert.equal(ok.signed, true, JSON.stringify(ok));
    // Logged two days later: the one-day certificate had expired by then.
    const late = verifyKeyless(
      candidate(
        payload,
        store.sign(payload, releaseSigner(HIVE), { integratedTime: Math.floor(Date.now() / 1000) + 2 * 86400 }),
      ),
      root,
    );
    assert.equal(late.signed, false);
    assert.match(
      !late.signed ? late.reason : '',
      /certificate does not chain to a CA of test-root valid at the logged time/,
    );
    const forged = verifyKeyless(
      candidate(
        payload,
        store.sign(payload, releaseSigner(HIVE), {
          rekorKey: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey,
        }),
      ),
      root,
    );
    assert.equal(forged.signed, false);
    assert.match(!forged.signed ? forged.reason : '', /transparency-log proof does not verify/);
    const elsewhere = makeTestSigstore(await mkdtemp(join(dir, 'other-')));
    const foreign = verifyKeyless(candidate(payload, elsewhere.sign(payload, releaseSigner(HIVE))), root);
    assert.equal(foreign.signed, false);
  }));

test('keyless at pull, verify and policy explain: the release workflow of the named repository is served; another is refused saying who signed', () =>
  withStore(async (store, dir) => {
    const reg = await startRegistry({
      http: { host: 'http://registry.test' },
      trust: {
        roots: { ours: store.rootPath },
        require: [{ name: 'releases', images: ['prod/**'], identities: [hiveRule], roots: ['ours'] }],
      },
    });
    try {
      const good = await makeImage({ label: 'keyless-good' });
      const bad = await makeImage({ label: 'keyless-bad' });
      await pushImage(reg.url, 'prod/app', '1', good);
      await pushImage(reg.url, 'prod/app', '2', bad);
      await pushKeylessSignature(
        reg.url,
        'prod/app',
        good.digest,
        'registry.test/prod/app:1',
        store,
        releaseSigner(HIVE),
      );
      await pushKeylessSignature(
        reg.url,
        'prod/app',
        bad.digest,
        'registry.test/prod/app:2',
        store,
        releaseSigner(OTHER, 'refs/heads/main'),
      );
      const ok = await fetch(`${reg.url}/v2/prod/app/manifests/1`, { headers: { accept: good.mediaType } });
      assert.equal(ok.status, 200);
      assert.deepEqual(await bytesOf(ok), good.manifest);
      const no = await fetch(`${reg.url}/v2/prod/app/manifests/2`, { headers: { accept: bad.mediaType } });
      assert.equal(no.status, 403);
      const e = await errorOf(no);
      assert.equal(e.code, 'DENIED');
      assert.match(
        e.message,
        /trust rule 1 "releases": .*signed by https:\/\/github\.com\/other\/repo\/\.github\/workflows\/release\.yml@refs\/heads\/main \(issuer https:\/\/token\.actions\.githubusercontent\.com, repository other\/repo, ref refs\/heads\/main, trigger push\), but the rule wants subject matching \/\^https:\/\/github\\\.com\/konard\/hive-mind\/.*\(its subject differs\)/,
      );

      // sluice verify with cosign's flags and the private root.
      const flags = [
        '--certificate-identity-regexp',
        hiveRule.subjectRegExp,
        '--certificate-oidc-issuer',
        GITHUB_ISSUER,
        '--trusted-root',
        store.rootPath,
        '--tls-verify=false',
      ];
      const v1 = await sluice([
        'verify',
        ...flags,
        '--identity',
        'registry.test/prod/app:1',
        `docker://${reg.host}/prod/app:1`,
      ]);
      assert.equal(v1.code, 0, v1.stderr);
      assert.match(v1.stdout, /verified/);
      const v2 = await sluice([
        'verify',
        ...flags,
        '--identity',
        'registry.test/prod/app:2',
        `docker://${reg.host}/prod/app:2`,
      ]);
      assert.equal(v2.code, 1);
      // The registry itself refuses to serve it (its rule), and says so through the client.
      assert.match(
        v2.stderr,
        /DENIED: .*signed by https:\/\/github\.com\/other\/repo\/.*but the rule wants subject matching/,
      );
      // Under the public-good root (the default) our test CA is not trusted.
      const pg = await sluice([
        'verify',
        '--certificate-identity-regexp',
        '.*',
        '--certificate-oidc-issuer',
        GITHUB_ISSUER,
        '--tls-verify=false',
        `docker://${reg.host}/prod/app:1`,
      ]);
      assert.equal(pg.code, 1);
      assert.match(pg.stdout, /not a valid keyless signature: its certificate does not chain to a CA of public-good/);
      const noIssuer = await sluice([
        'verify',
        '--certificate-identity',
        'x',
        '--tls-verify=false',
        `docker://${reg.host}/prod/app:1`,
      ]);
      assert.equal(noIssuer.code, 1);
      assert.match(noIssuer.stderr, /--certificate-oidc-issuer/);

      const cfg = join(dir, 'config.yml');
      await writeFile(
        cfg,
        `trust:\n  roots: {ours: ${store.rootPath}}\n  require:\n    - images: ["prod/**"]\n      identities: [{issuer: "${GITHUB_ISSUER}", subject: "https://github.com/${HIVE}/.github/workflows/release.yml@refs/tags/v1.2.0"}]\n      roots: [ours]\n`,
      );
      const ex = await sluice(['policy', 'explain', '-c', cfg, '--action', 'trust', 'prod/app:1']);
      assert.equal(ex.code, 0, ex.stderr);
      assert.match(
        ex.stdout,
        /pull +trust rule 1: a keyless signature by subject https:\/\/github\.com\/konard\/hive-mind\/\.github\/workflows\/release\.yml@refs\/tags\/v1\.2\.0, issuer https:\/\/token\.actions\.githubusercontent\.com \(root ours\)/,
      );
    } finally {
      await reg.close();
    }
  }));

test('keyless at the cache, in mirror jobs and at passthrough (config rules)', () =>
  withStore(async (store) => {
    const up = await startRegistry();
    const good = await makeImage({ label: 'keyless-up-good' });
    const bad = await makeImage({ label: 'keyless-up-bad' });
    await pushImage(up.url, HIVE, '1', good);
    await pushImage(up.url, HIVE, '2', bad);
    // The upstream stands in for Docker Hub: the signatures name docker.io.
    await pushKeylessSignature(up.url, HIVE, good.digest, `docker.io/${HIVE}:1`, store, releaseSigner(HIVE));
    await pushKeylessSignature(up.url, HIVE, bad.digest, `docker.io/${HIVE}:2`, store, releaseSigner(OTHER));
    const trust = {
      roots: { ours: store.rootPath },
      require: [
        {
          images: [`docker.io/${HIVE}`],
          identities: [{ ...hiveRule, github: { repository: HIVE, ref: 'refs/tags/*' } }],
          roots: ['ours'],
          identity: 'matchRepository',
        },
      ],
    };
    const reg = await startRegistry({
      upstreams: { 'docker.io': { url: up.url } },
      flows: [{ images: ['docker.io/konard/*'] }],
      trust,
      mirrors: [{ name: 'hive', images: [`docker.io/${HIVE}`] }],
    });
    try {
      // Cache.
      const ok = await fetch(`${reg.url}/v2/docker.io/${HIVE}/manifests/1`, { headers: { accept: good.mediaType } });
      assert.equal(ok.status, 200);
      assert.deepEqual(await bytesOf(ok), good.manifest);
      const no = await fetch(`${reg.url}/v2/docker.io/${HIVE}/manifests/2`);
      assert.equal(no.status, 403);
      assert.match(
        (await errorOf(no)).message,
        /is not fetched: trust rule 1: .*signed by https:\/\/github\.com\/other\/repo\/.*its subject differs/,
      );
      // Mirror job.
      const job = buildMirrorJobs(reg.ctx, reg.ctx.config, { info: () => undefined, warn: () => undefined })[0]!;
      const run = await job.run();
      assert.deepEqual(run.copied, [`docker.io/${HIVE}:1`]);
      assert.equal(run.refused[0]?.image, `docker.io/${HIVE}:2`);
      assert.match(run.refused[0]!.reason, /signed by https:\/\/github\.com\/other\/repo/);
      assert.ok(await reg.ctx.repo(`docker.io/${HIVE}` as never).resolveTag(`${digestTag(good.digest)}.sig`));

      // Passthrough: the config gate (through the same Trust) and a containers-policy.json gate, on the upstream's images.
      const t = new Trust({
        ...trust,
        keys: {},
        require: trust.require.map((r) => ({ ...r, keys: [], on: ['passthrough' as const] })),
      } as never);
      const gate = configGate(t as never);
      const ref = parseReference(`docker.io/${HIVE}:1`);
      const src = (d: string) => openSource(`docker://${up.host}/${HIVE}@${d}`, { tlsVerify: false });
      for (const [digest, want] of [
        [good.digest, true],
        [bad.digest, false],
      ] as const) {
        const s = await src(digest);
        try {
          const v = await gate.check(s, ref, digest);
          assert.equal(v.allowed, want, v.reason);
        } finally {
          await s.close();
        }
      }
    } finally {
      await reg.close();
      await up.close();
    }
  }));
