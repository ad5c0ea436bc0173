import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signImage } from '../../src/sign/index.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';
import { sluice } from '../helpers/sluice-cli.js';

test('remapIdentity onto a Docker Hub namespace is accepted and matched on the command line, in policy.json and in trust:', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-remap-'));
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pub = join(dir, 'hive.pub');
  await writeFile(pub, publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const before = await startRegistry();
  try {
    const img = await makeImage({ label: 'remap' });
    await pushImage(before.url, 'konard/hive-mind', '1', img);
    const transport = { tlsVerify: false };
    await signImage(`docker://${before.host}/konard/hive-mind:1`, privateKey, {
      identity: 'docker.io/library/hive-mind:1',
      transport,
    });
    await signImage(`docker://${before.host}/konard/hive-mind:1`, privateKey, {
      identity: 'docker.io/konard/hive-mind:1',
      transport,
    });
    const image = `docker://${before.host}/konard/hive-mind:1`;
    // The command line: this registry's konard/ stands for docker.io/library/.
    const cli = await sluice([
      'verify',
      '--key',
      pub,
      '--identity-rule',
      `remapIdentity:${before.host}/konard=docker.io/library`,
      '--tls-verify=false',
      image,
    ]);
    assert.equal(cli.code, 0, cli.stderr);
    // A containers-policy.json whose signedPrefix is a Docker Hub namespace.
    const policy = join(dir, 'policy.json');
    const signedIdentity = { type: 'remapIdentity', prefix: `${before.host}/konard`, signedPrefix: 'docker.io/konard' };
    await writeFile(
      policy,
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: { docker: { [before.host]: [{ type: 'sigstoreSigned', keyPath: pub, signedIdentity }] } },
      }),
    );
    const viaPolicy = await sluice(['verify', '--policy', policy, '--tls-verify=false', image]);
    assert.equal(viaPolicy.code, 0, viaPolicy.stderr);
    // trust: on pull, the registry's own name (http.host) remapped onto docker.io/konard.
    const identity = { type: 'remapIdentity', prefix: 'registry.test/konard', signedPrefix: 'docker.io/konard' };
    const reg = await startRegistry(
      {
        http: { host: 'http://registry.test' },
        trust: { keys: { hive: pub }, require: [{ images: ['konard/**'], keys: ['hive'], identity }] },
      },
      before.root,
    );
    try {
      assert.equal((await fetch(`${reg.url}/v2/konard/hive-mind/manifests/1`)).status, 200);
    } finally {
      await reg.close();
    }
  } finally {
    await before.close();
    await rm(dir, { recursive: true, force: true });
  }
});
