import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, pushImage, type TestImage } from '../helpers/images.js';
import { bytesOf, errorOf } from '../helpers/oci-http.js';
import { sluice } from '../helpers/sluice-cli.js';
import {
  GITHUB_ISSUER,
  makeTestSigstore,
  pushKeylessBundle,
  releaseSigner,
  type TestSigstore,
} from '../helpers/keyless.js';
import { buildMirrorJobs } from '../../src/registry/sync-setup.js';

// Keyless sigstore bundles attached as OCI 1.1 referrers (cosign 3's form), enforced where images move: pull,
// the cache (another Sluice as the upstream, read through its referrers API), a mirror job and sluice copy.
// The signatures come from the test sigstore of test/helpers/keyless.ts (a CA made with openssl, a log key, SETs and
// inclusion proofs under signed checkpoints): no published bundle signs a manifest we hold (the real ones are in
// test/sign/keyless.test.ts). No `.sig` tag exists here, so only the referrer can satisfy a rule.
const HIVE = 'konard/hive-mind';
const OTHER = 'other/repo';
const hiveRule = {
  issuer: GITHUB_ISSUER,
  subjectRegExp: `^https://github\\.com/${HIVE}/\\.github/workflows/.*@refs/tags/.*$`,
};
const subjectOf = (img: TestImage) => ({ digest: img.digest, mediaType: img.mediaType, size: img.manifest.length });

async function withStore(fn: (store: TestSigstore, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-keyless-bundle-'));
  try {
    await fn(makeTestSigstore(dir), dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('bundle referrers at pull: v0.3 and v0.2 bundles by the release workflow are served; one by another workflow is refused naming it', () =>
  withStore(async (store) => {
    const reg = await startRegistry({
      http: { host: 'http://registry.test' },
      trust: {
        roots: { ours: store.rootPath },
        require: [{ name: 'releases', images: ['prod/**'], identities: [hiveRule], roots: ['ours'] }],
      },
    });
    try {
      const v03 = await makeImage({ label: 'bundle-v03' });
      const v02 = await makeImage({ label: 'bundle-v02' });
      const bad = await makeImage({ label: 'bundle-other' });
      await pushImage(reg.url, 'prod/app', '3', v03);
      await pushImage(reg.url, 'prod/app', '2', v02);
      await pushImage(reg.url, 'prod/app', 'x', bad);
      await pushKeylessBundle(
        reg.url,
        'prod/app',
        subjectOf(v03),
        'registry.test/prod/app:3',
        store,
        releaseSigner(HIVE),
      );
      await pushKeylessBundle(
        reg.url,
        'prod/app',
        subjectOf(v02),
        'registry.test/prod/app:2',
        store,
        releaseSigner(HIVE),
        { version: '0.2' },
      );
      await pushKeylessBundle(
        reg.url,
        'prod/app',
        subjectOf(bad),
        'registry.test/prod/app:x',
        store,
        releaseSigner(OTHER, 'refs/heads/main'),
      );
      for (const [tag, img] of [
        ['3', v03],
        ['2', v02],
      ] as const) {
        const ok = await fetch(`${reg.url}/v2/prod/app/manifests/${tag}`, { headers: { accept: img.mediaType } });
        assert.equal(ok.status, 200, `tag ${tag}: ${ok.status === 200 ? '' : (await errorOf(ok)).message}`);
        assert.deepEqual(await bytesOf(ok), img.manifest);
      }
      const no = await fetch(`${reg.url}/v2/prod/app/manifests/x`, { headers: { accept: bad.mediaType } });
      assert.equal(no.status, 403);
      const e = await errorOf(no);
      assert.equal(e.code, 'DENIED');
      assert.match(
        e.message,
        /trust rule 1 "releases": .*referrer sha256:\w+: signed by https:\/\/github\.com\/other\/repo\/\.github\/workflows\/release\.yml@refs\/heads\/main \(issuer https:\/\/token\.actions\.githubusercontent\.com.*\), but the rule wants subject matching \/\^https:\/\/github\\\.com\/konard\/hive-mind\/.*\(its subject differs\)/,
      );
    } finally {
      await reg.close();
    }
  }));

test('bundle referrers at the cache (a second Sluice upstream), in a mirror job and in sluice copy: accepted and refused', () =>
  withStore(async (store, dir) => {
    const up = await startRegistry();
    const dst = await startRegistry();
    try {
      const good = await makeImage({ label: 'bundle-up-good' });
      const bad = await makeImage({ label: 'bundle-up-bad' });
      await pushImage(up.url, HIVE, '1', good);
      await pushImage(up.url, HIVE, '2', bad);
      // The upstream stands in for Docker Hub: the statements name docker.io.
      await pushKeylessBundle(up.url, HIVE, subjectOf(good), `docker.io/${HIVE}:1`, store, releaseSigner(HIVE));
      await pushKeylessBundle(up.url, HIVE, subjectOf(bad), `docker.io/${HIVE}:2`, store, releaseSigner(OTHER));
      const identities = [{ ...hiveRule, github: { repository: HIVE, ref: 'refs/tags/*' } }];
      const trust = {
        roots: { ours: store.rootPath },
        require: [{ images: [`docker.io/${HIVE}`], identities, roots: ['ours'], identity: 'matchRepository' }],
      };
      const reg = await startRegistry({
        upstreams: { 'docker.io': { url: up.url } },
        flows: [{ images: ['docker.io/konard/*'] }],
        trust,
        mirrors: [{ name: 'hive', images: [`docker.io/${HIVE}`] }],
      });
      try {
        const ok = await fetch(`${reg.url}/v2/docker.io/${HIVE}/manifests/1`, { headers: { accept: good.mediaType } });
        assert.equal(ok.status, 200, ok.status === 200 ? '' : (await errorOf(ok)).message);
        assert.deepEqual(await bytesOf(ok), good.manifest);
        const no = await fetch(`${reg.url}/v2/docker.io/${HIVE}/manifests/2`);
        assert.equal(no.status, 403);
        assert.match(
          (await errorOf(no)).message,
          /is not fetched: trust rule 1: .*referrer sha256:\w+: signed by https:\/\/github\.com\/other\/repo\/.*its subject differs/,
        );

        const job = buildMirrorJobs(reg.ctx, reg.ctx.config, { info: () => undefined, warn: () => undefined })[0]!;
        const run = await job.run();
        assert.deepEqual(run.copied, [`docker.io/${HIVE}:1`]);
        assert.equal(run.refused[0]?.image, `docker.io/${HIVE}:2`);
        assert.match(run.refused[0]!.reason, /referrer sha256:\w+: signed by https:\/\/github\.com\/other\/repo/);
      } finally {
        await reg.close();
      }

      const cfg = join(dir, 'copy.yml');
      const re = hiveRule.subjectRegExp.replace(/\\/g, '\\\\');
      await writeFile(
        cfg,
        `trust:\n  roots: {ours: ${store.rootPath}}\n  require:\n    - images: ["${up.host}/konard/*"]\n      identities: [{issuer: "${GITHUB_ISSUER}", subjectRegExp: "${re}"}]\n      roots: [ours]\n      identity: {type: exactRepository, dockerRepository: docker.io/${HIVE}}\n      on: [copy]\n`,
      );
      const copy = (tag: string) =>
        sluice([
          'copy',
          '-c',
          cfg,
          '--src-tls-verify=false',
          '--dest-tls-verify=false',
          `docker://${up.host}/${HIVE}:${tag}`,
          `docker://${dst.host}/a/hive:${tag}`,
        ]);
      const c1 = await copy('1');
      assert.equal(c1.code, 0, c1.stderr);
      assert.equal(
        (await fetch(`${dst.url}/v2/a/hive/manifests/1`, { method: 'HEAD', headers: { accept: good.mediaType } }))
          .status,
        200,
      );
      const c2 = await copy('2');
      assert.equal(c2.code, 1);
      assert.match(
        c2.stderr,
        /is refused: trust rule 1: .*referrer sha256:\w+: signed by https:\/\/github\.com\/other\/repo/,
      );
      assert.equal((await fetch(`${dst.url}/v2/a/hive/manifests/2`)).status, 404);
    } finally {
      await dst.close();
      await up.close();
    }
  }));
