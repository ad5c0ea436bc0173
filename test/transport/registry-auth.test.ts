import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeMultiArch, writeOciLayout } from '../helpers/images.js';
import { freePort, layoutDigest, scratch, waitForHttp } from '../helpers/clients.js';
import { needTools } from '../helpers/tools.js';
import { sluice, sluiceCopy } from '../helpers/sluice-cli.js';
import { startAuthRegistry, USERS, writeHtpasswd } from '../auth/fixture.js';

const ACCESS = {
  rules: [
    { repos: ['public/**'], who: ['*'], allow: ['pull'] },
    { repos: ['**'], who: ['authenticated'], allow: ['pull', 'push', 'delete', 'overwrite', 'list'] },
  ],
};

function authFile(host: string, user: string, password: string): string {
  return JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } });
}

test('Bearer tokens from Sluice: anonymous pull, --dest-creds, --authfile, ~/.docker/config.json, mounts across repositories', async () => {
  const s = await scratch();
  const fx = await startAuthRegistry({ access: ACCESS });
  const host = fx.reg.host;
  try {
    const idx = await makeMultiArch('bearer');
    await writeOciLayout(join(s.dir, 'src'), [{ tag: 'v1', image: idx }]);
    const total = idx.images.flatMap((i) => [i.config, ...i.layers]).reduce((a, b) => a + b.bytes.length, 0);

    const denied = await sluice(['copy', '--all', `oci:${s.dir}/src:v1`, `docker://${host}/public/app:v1`], {
      DOCKER_CONFIG: join(s.dir, 'none'),
    });
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /UNAUTHORIZED|DENIED|401|403/);

    const bad = await sluice([
      'copy',
      '--all',
      '--dest-creds',
      'alice:wrong',
      `oci:${s.dir}/src:v1`,
      `docker://${host}/public/app:v1`,
    ]);
    assert.equal(bad.code, 1);

    const pushed = await sluiceCopy(`oci:${s.dir}/src:v1`, `docker://${host}/public/app:v1`, [
      '--all',
      '--dest-creds',
      `alice:${USERS.alice}`,
    ]);
    assert.equal(pushed.digest, idx.digest);
    assert.equal(pushed.bytesSent, total);

    // Anonymous token for a public repository.
    const pulled = await sluiceCopy(`docker://${host}/public/app:v1`, `oci:${s.dir}/anon:v1`, ['--all'], {
      DOCKER_CONFIG: join(s.dir, 'none'),
    });
    assert.equal(pulled.digest, idx.digest);
    assert.equal(await layoutDigest(join(s.dir, 'anon'), 'v1'), idx.digest);

    // --authfile; the token must cover the mount's source repository too.
    const af = join(s.dir, 'auth.json');
    await writeFile(af, authFile(host, 'bob', USERS.bob));
    const mounted = await sluiceCopy(`docker://${host}/public/app:v1`, `docker://${host}/bob/app:v1`, [
      '--all',
      '--authfile',
      af,
    ]);
    assert.equal(mounted.bytesMounted, total);
    assert.equal(mounted.bytesSent, 0);

    // The Docker config's auths, found through DOCKER_CONFIG as docker finds it.
    await mkdir(join(s.dir, 'docker'), { recursive: true });
    await writeFile(join(s.dir, 'docker', 'config.json'), authFile(`http://${host}`, 'carol', USERS.carol));
    const viaConfig = await sluiceCopy(`docker://${host}/bob/app:v1`, `docker://${host}/carol/app:v1`, ['--all'], {
      DOCKER_CONFIG: join(s.dir, 'docker'),
    });
    assert.equal(viaConfig.digest, idx.digest);
    const tags = await sluice(['tags', `docker://${host}/carol/app`], { DOCKER_CONFIG: join(s.dir, 'docker') });
    assert.equal(tags.stdout, 'v1\n');
  } finally {
    await fx.close();
    await s.cleanup();
  }
});

test('Basic auth against Distribution with htpasswd', async (t) => {
  if (!needTools(t, 'docker-registry')) return;
  const s = await scratch();
  await writeHtpasswd(join(s.dir, 'htpasswd'), { alice: USERS.alice });
  const port = await freePort();
  await writeFile(
    join(s.dir, 'config.yml'),
    [
      'version: 0.1',
      'log: {level: error}',
      `storage: {filesystem: {rootdirectory: ${JSON.stringify(join(s.dir, 'data'))}}}`,
      `http: {addr: 127.0.0.1:${port}}`,
      `auth: {htpasswd: {realm: test, path: ${JSON.stringify(join(s.dir, 'htpasswd'))}}}`,
      '',
    ].join('\n'),
  );
  const child = spawn('docker-registry', ['serve', join(s.dir, 'config.yml')], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    await waitForHttp(`http://127.0.0.1:${port}/v2/`, child);
    const host = `127.0.0.1:${port}`;
    const idx = await makeMultiArch('basic');
    await writeOciLayout(join(s.dir, 'src'), [{ tag: 'v1', image: idx }]);
    const anon = await sluice(['copy', '--all', `oci:${s.dir}/src:v1`, `docker://${host}/app:v1`], {
      DOCKER_CONFIG: join(s.dir, 'none'),
    });
    assert.equal(anon.code, 1);
    assert.match(anon.stderr, /UNAUTHORIZED|401/);
    const ok = await sluiceCopy(`oci:${s.dir}/src:v1`, `docker://${host}/app:v1`, [
      '--all',
      '--dest-creds',
      `alice:${USERS.alice}`,
    ]);
    assert.equal(ok.digest, idx.digest);
    const back = await sluiceCopy(`docker://${host}/app:v1`, `oci:${s.dir}/back:v1`, [
      '--all',
      '--src-creds',
      `alice:${USERS.alice}`,
    ]);
    assert.equal(back.digest, idx.digest);
    assert.equal(await layoutDigest(join(s.dir, 'back'), 'v1'), idx.digest);
  } finally {
    child.kill('SIGTERM');
    await exited;
    await s.cleanup();
  }
});
