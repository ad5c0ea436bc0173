import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { sluice } from '../helpers/sluice-cli.js';
import { GITHUB_ISSUER, makeTestSigstore, pushKeylessSignature, releaseSigner } from '../helpers/keyless.js';
import { policyGate } from '../../src/passthrough/signatures.js';
import { loadPolicyFile } from '../../src/sign/index.js';
import { parseReference } from '../../src/oci/reference.js';
import { openSource } from '../../src/transport/index.js';

// Keyless rules in sluice copy: a config's trust rules (on: copy) and containers-policy.json's keyless form
// (fulcio + rekorPublicKeyPath), which passthrough reads too; with the test sigstore of test/helpers/keyless.ts.
const HIVE = 'konard/hive-mind';
const OTHER = 'other/repo';
const hiveRule = {
  issuer: GITHUB_ISSUER,
  subjectRegExp: `^https://github\\.com/${HIVE}/\\.github/workflows/.*@refs/tags/.*$`,
};

test('keyless in sluice copy (config rules and containers-policy.json fulcio) and a fulcio policy as a passthrough gate', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-keyless-copy-'));
  const store = makeTestSigstore(dir);
  const up = await startRegistry();
  try {
    const good = await makeImage({ label: 'keyless-copy-good' });
    const bad = await makeImage({ label: 'keyless-copy-bad' });
    await pushImage(up.url, HIVE, '1', good);
    await pushImage(up.url, HIVE, '2', bad);
    await pushKeylessSignature(up.url, HIVE, good.digest, `docker.io/${HIVE}:1`, store, releaseSigner(HIVE));
    await pushKeylessSignature(up.url, HIVE, bad.digest, `docker.io/${HIVE}:2`, store, releaseSigner(OTHER));
    const src = (d: string) => openSource(`docker://${up.host}/${HIVE}@${d}`, { tlsVerify: false });
    // sluice copy with a config's rules (on copy) and with containers-policy.json's keyless form, read as written.
    const dst = await startRegistry();
    try {
      const cfg = join(dir, 'copy.yml');
      await writeFile(
        cfg,
        `trust:\n  roots: {ours: ${store.rootPath}}\n  require:\n    - images: ["${up.host}/konard/*"]\n      identities: [{issuer: "${GITHUB_ISSUER}", subjectRegExp: "${hiveRule.subjectRegExp.replace(/\\/g, '\\\\')}"}]\n      roots: [ours]\n      identity: {type: exactRepository, dockerRepository: docker.io/${HIVE}}\n      on: [copy]\n`,
      );
      const c1 = await sluice([
        'copy',
        '-c',
        cfg,
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${up.host}/${HIVE}:1`,
        `docker://${dst.host}/a/hive:1`,
      ]);
      assert.equal(c1.code, 0, c1.stderr);
      const c2 = await sluice([
        'copy',
        '-c',
        cfg,
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${up.host}/${HIVE}:2`,
        `docker://${dst.host}/a/hive:2`,
      ]);
      assert.equal(c2.code, 1);
      assert.match(c2.stderr, /is refused: trust rule 1: .*signed by https:\/\/github\.com\/other\/repo/);
      assert.equal((await fetch(`${dst.url}/v2/a/hive/manifests/2`)).status, 404);

      // containers/image's fulcio form names an email subject: sign one image as a person, the other as a workflow.
      const person = { subject: 'release@hive.example', issuer: 'https://accounts.google.com' };
      const mail = await makeImage({ label: 'keyless-mail' });
      await pushImage(up.url, HIVE, '3', mail);
      await pushKeylessSignature(up.url, HIVE, mail.digest, `docker.io/${HIVE}:3`, store, person);
      const policy = join(dir, 'policy.json');
      await writeFile(
        policy,
        JSON.stringify({
          default: [{ type: 'reject' }],
          transports: {
            docker: {
              [`${up.host}/konard`]: [
                {
                  type: 'sigstoreSigned',
                  fulcio: { caPath: store.caPath, oidcIssuer: person.issuer, subjectEmail: person.subject },
                  rekorPublicKeyPath: store.rekorKeyPath,
                  signedIdentity: {
                    type: 'remapIdentity',
                    prefix: `${up.host}/konard`,
                    signedPrefix: 'docker.io/konard',
                  },
                },
              ],
            },
          },
        }),
      );
      const p3 = await sluice([
        'copy',
        '--policy',
        policy,
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${up.host}/${HIVE}:3`,
        `docker://${dst.host}/p/hive:3`,
      ]);
      assert.equal(p3.code, 0, p3.stderr);
      const p1 = await sluice([
        'copy',
        '--policy',
        policy,
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${up.host}/${HIVE}:1`,
        `docker://${dst.host}/p/hive:1`,
      ]);
      assert.equal(p1.code, 1);
      assert.match(
        p1.stderr,
        /signed by https:\/\/github\.com\/konard\/hive-mind\/.*but the rule wants subject release@hive\.example, issuer https:\/\/accounts\.google\.com/,
      );
      // The same policy file as a passthrough gate.
      const pg = policyGate(await loadPolicyFile(policy), 'policy.json');
      const pref = parseReference(`${up.host}/${HIVE}:3`);
      for (const [digest, want] of [
        [mail.digest, true],
        [good.digest, false],
      ] as const) {
        const s = await src(digest);
        try {
          assert.equal((await pg.check(s, pref, digest)).allowed, want);
        } finally {
          await s.close();
        }
      }
    } finally {
      await dst.close();
    }
  } finally {
    await up.close();
    await rm(dir, { recursive: true, force: true });
  }
});
