import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeMultiArch, pushImage } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';
import { sluice } from '../helpers/sluice-cli.js';

const PW = { COSIGN_PASSWORD: 'correct horse' };

test('sign --recursive signs an index and every platform manifest, each verifiable on its own; without it the children have none', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-sign-recursive-'));
  const reg = await startRegistry();
  try {
    const k = join(dir, 'signer');
    assert.equal((await sluice(['key', 'generate', '--output-key-prefix', k], PW)).code, 0);
    const idx = await makeMultiArch('recursive');
    await pushImage(reg.url, 'multi/app', '1', idx);
    await pushImage(reg.url, 'multi/plain', '1', idx);
    const s = await sluice(
      ['sign', '--key', `${k}.key`, '--recursive', '--tls-verify=false', `docker://${reg.host}/multi/app:1`],
      PW,
    );
    assert.equal(s.code, 0, s.stderr);
    for (const d of [idx.digest, ...idx.images.map((i) => i.digest)])
      assert.match(s.stdout, new RegExp(`Signed ${d} as ${reg.host}/multi/app:1`));
    const verify = (repo: string, ref: string) =>
      sluice(['verify', '--key', `${k}.pub`, '--tls-verify=false', `docker://${reg.host}/${repo}${ref}`]);
    for (const child of idx.images) {
      const v = await verify('multi/app', `@${child.digest}`);
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stdout, /: verified\n/);
    }
    // The index alone: its own signature verifies, its children have none.
    const plain = await sluice(
      ['sign', '--key', `${k}.key`, '--tls-verify=false', `docker://${reg.host}/multi/plain:1`],
      PW,
    );
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal((await verify('multi/plain', ':1')).code, 0);
    for (const child of idx.images) {
      const v = await verify('multi/plain', `@${child.digest}`);
      assert.equal(v.code, 1);
      assert.match(v.stderr, /no signatures found/);
    }
  } finally {
    await reg.close();
    await rm(dir, { recursive: true, force: true });
  }
});
