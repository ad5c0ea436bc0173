import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeHtpasswd } from '../auth/fixture.js';
import { sluice, startSluiceProcess } from '../helpers/sluice-cli.js';

const readme = fileURLToPath(new URL('../../../README.md', import.meta.url));

/** The first ```yaml block after a heading of the README. */
async function yamlAfter(heading: string): Promise<string> {
  const text = await readFile(readme, 'utf8');
  const at = text.indexOf(`\n## ${heading}\n`);
  assert.ok(at >= 0, `README has no "## ${heading}"`);
  const m = /```yaml\n([\s\S]*?)```/.exec(text.slice(at));
  assert.ok(m, `no yaml block under ${heading}`);
  return m[1]!;
}

test("the README's access-control example starts as shown (the steps its comments name, nothing more)", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-readme-'));
  try {
    const cfg = join(dir, 'config.yml');
    await writeFile(cfg, await yamlAfter('Access control'));
    // `htpasswd -bB users.htpasswd alice secret`, as the comment says.
    await writeHtpasswd(join(dir, 'users.htpasswd'), { alice: 'secret' });
    // `sluice robot create builder --expires 30d -c config.yml`, run from elsewhere: paths follow the config.
    const robot = await sluice(['robot', 'create', 'builder', '--expires', '30d', '-c', cfg]);
    assert.equal(robot.code, 0, robot.stderr);
    await stat(join(dir, 'robots.json'));
    const server = await startSluiceProcess(join(dir, 'data'), { config: cfg });
    try {
      const r = await fetch(`${server.url}/v2/`);
      assert.equal(r.status, 401);
      const tok = await fetch(`${server.url}/token?service=sluice&scope=repository:alice/app:pull,push`, {
        headers: { authorization: `Basic ${Buffer.from('alice:secret').toString('base64')}` },
      });
      assert.equal(tok.status, 200);
      // The token key named in the example was created on first start, readable by its owner only.
      const key = await stat(join(dir, 'token-key.pem'));
      assert.equal(key.mode & 0o777, 0o600);
    } finally {
      await server.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the README's cache example is a valid config", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-readme-cache-'));
  try {
    for (const heading of [
      'Approved upstream images: the pull-through cache',
      'Mirror jobs: following upstream images by themselves',
      'Operating it',
    ]) {
      const cfg = join(dir, 'config.yml');
      await writeFile(cfg, await yamlAfter(heading));
      const r = await sluice(['policy', 'check', '-c', cfg]);
      assert.doesNotMatch(r.stderr + r.stdout, /unknown config key|invalid/i, heading);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the README's keyless and notation example is a valid config that requires what it says", async () => {
  const text = await readFile(readme, 'utf8');
  const m = /```yaml\n(trust:\n {2}trustStores:[\s\S]*?)```/.exec(text);
  assert.ok(m, 'the README has the keyless and notation example');
  const dir = await mkdtemp(join(tmpdir(), 'sluice-readme-trust-'));
  try {
    // The store the example names, holding notation's own test CA certificate.
    const store = join(dir, 'truststore', 'x509', 'ca', 'wabbit-networks');
    await mkdir(store, { recursive: true });
    const crt = fileURLToPath(new URL('../../../test/sign/fixtures/notation/wabbit-networks.io.crt', import.meta.url));
    await copyFile(crt, join(store, 'wabbit-networks.io.crt'));
    const cfg = join(dir, 'config.yml');
    await writeFile(cfg, m[1]!);
    const check = await sluice(['policy', 'check', '-c', cfg]);
    assert.equal(check.code, 0, check.stderr + check.stdout);
    const keyless = await sluice([
      'policy',
      'explain',
      '-c',
      cfg,
      '--action',
      'trust',
      'docker.io/konard/hive-mind:v1',
    ]);
    assert.match(keyless.stdout, /pull +trust rule 1 "hive-mind releases": a keyless signature by subject matching/);
    const vendor = await sluice([
      'policy',
      'explain',
      '-c',
      cfg,
      '--action',
      'trust',
      'docker.io/wabbitnetworks/net:1',
    ]);
    assert.match(vendor.stdout, /pull +trust rule 2 "vendor images".*notation/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
