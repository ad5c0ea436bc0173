import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { assertIntact } from '../helpers/oci-http.js';
import { sluice } from '../helpers/sluice-cli.js';
import { buildMirrorJobs } from '../../src/registry/sync-setup.js';
import { signImage } from '../../src/sign/index.js';
import { digestTag } from '../../src/oci/digest.js';

function keyPair(): { priv: KeyObject; pub: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { priv: privateKey, pub: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

test('trust in mirror jobs and sluice copy --policy: unsigned images are refused with the reason, signed ones travel with their signature', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-trust-move-'));
  const key = keyPair();
  await writeFile(join(dir, 'hive.pub'), key.pub);
  const up = await startRegistry();
  const signed = await makeImage({ label: 'signed' });
  const unsigned = await makeImage({ label: 'unsigned' });
  await pushImage(up.url, 'library/app', '1', signed);
  await pushImage(up.url, 'library/app', '2', unsigned);
  // The upstream stands in for Docker Hub: the signature binds the docker.io name.
  await signImage(`docker://${up.host}/library/app:1`, key.priv, {
    identity: 'docker.io/library/app:1',
    transport: { tlsVerify: false },
  });
  const reg = await startRegistry({
    upstreams: { 'docker.io': { url: up.url } },
    flows: [{ images: ['docker.io/library/*'] }],
    trust: {
      keys: { hive: join(dir, 'hive.pub') },
      require: [{ images: ['docker.io/library/*'], keys: ['hive'], on: ['mirror'] }],
    },
    mirrors: [{ name: 'app', images: ['docker.io/library/app'] }],
  });
  try {
    const job = buildMirrorJobs(reg.ctx, reg.ctx.config, { info: () => undefined, warn: () => undefined })[0]!;
    const run = await job.run();
    assert.deepEqual(run.copied, ['docker.io/library/app:1']);
    assert.equal(run.refused.length, 1);
    assert.equal(run.refused[0]!.image, 'docker.io/library/app:2');
    assert.match(run.refused[0]!.reason, /trust rule 1: .*no signatures found/);
    // The signature came along, so pulls from the mirror can be checked too.
    const repo = reg.ctx.repo('docker.io/library/app' as never);
    assert.ok(await repo.resolveTag(`${digestTag(signed.digest)}.sig`));
    assert.equal(await repo.resolveTag('2'), null);

    // sluice copy with a containers-policy.json, as skopeo reads it.
    const policy = join(dir, 'policy.json');
    await writeFile(
      policy,
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: {
          docker: {
            [`${up.host}/library`]: [
              {
                type: 'sigstoreSigned',
                keyPath: join(dir, 'hive.pub'),
                signedIdentity: {
                  type: 'remapIdentity',
                  prefix: `${up.host}/library/app`,
                  signedPrefix: 'docker.io/library/app',
                },
              },
            ],
          },
        },
      }),
    );
    const dst = await startRegistry();
    try {
      const bad = await sluice([
        'copy',
        '--policy',
        policy,
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${up.host}/library/app:2`,
        `docker://${dst.host}/x/app:2`,
      ]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /is refused by .*policy\.json: .*no signatures found/);
      assert.equal((await fetch(`${dst.url}/v2/x/app/manifests/2`)).status, 404);
      const ok = await sluice([
        'copy',
        '--policy',
        policy,
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${up.host}/library/app:1`,
        `docker://${dst.host}/x/app:1`,
      ]);
      assert.equal(ok.code, 0, ok.stderr);
      await assertIntact(dst.url, 'x/app', '1', signed);
      assert.equal((await fetch(`${dst.url}/v2/x/app/manifests/${digestTag(signed.digest)}.sig`)).status, 200);
      // A Sluice config's trust rules with on: copy judge the source too.
      const cfg = join(dir, 'config.yml');
      await writeFile(
        cfg,
        `trust:\n  keys: {hive: ${join(dir, 'hive.pub')}}\n  require:\n    - images: ["${up.host}/library/*"]\n      keys: [hive]\n      on: [copy]\n`,
      );
      const viaConfig = await sluice([
        'copy',
        '-c',
        cfg,
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${up.host}/library/app:2`,
        `docker://${dst.host}/z/app:2`,
      ]);
      assert.equal(viaConfig.code, 1);
      assert.match(viaConfig.stderr, /is refused: trust rule 1: .*no signatures found/);
      // A scope the policy does not name falls to its default: reject.
      const other = await sluice([
        'copy',
        '--policy',
        policy,
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${dst.host}/x/app:1`,
        `docker://${dst.host}/y/app:1`,
      ]);
      assert.equal(other.code, 1);
      assert.match(other.stderr, /reject/);
    } finally {
      await dst.close();
    }
  } finally {
    await reg.close();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a mirror job gives an unsigned tag one verdict, refused, in its plan and in its run (no copy step before it)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-trust-move-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'hive.pub'), keyPair().pub);
  const up = await startRegistry();
  t.after(() => up.close());
  await pushImage(up.url, 'library/app', '2', await makeImage({ label: 'unsigned' }));
  const reg = await startRegistry({
    upstreams: { 'docker.io': { url: up.url } },
    flows: [{ images: ['docker.io/library/*'] }],
    trust: {
      keys: { hive: join(dir, 'hive.pub') },
      require: [{ images: ['docker.io/library/*'], keys: ['hive'], on: ['mirror'] }],
    },
    mirrors: [{ name: 'app', images: ['docker.io/library/app'] }],
  });
  t.after(() => reg.close());
  const job = buildMirrorJobs(reg.ctx, reg.ctx.config, { info: () => undefined, warn: () => undefined })[0]!;
  for (const dryRun of [true, false]) {
    const steps: string[] = [];
    await job.run({ dryRun, onStep: (s) => steps.push(`${s.action} ${s.tag}`) });
    assert.deepEqual(steps, ['refused 2'], dryRun ? 'the plan' : 'the run');
  }
});
