import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtemp, readFile } from 'node:fs/promises';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { podmanIn, scratch, skopeoMay } from '../helpers/clients.js';
import { dockerCli, hasDocker, startDockerd } from '../helpers/dockerd.js';
import { needTools, run, runOk } from '../helpers/tools.js';
import { EXAMPLE_ACCESS, startAuthRegistry, USERS } from './fixture.js';
import { startContainerd } from './containerd.js';

// The example policy, plus alice may publish under public/.
const ACCESS = {
  ...EXAMPLE_ACCESS,
  rules: [...EXAMPLE_ACCESS.rules, { repos: ['public/**'], who: ['alice'], allow: ['push', 'overwrite'] }],
};

async function layout(dir: string, label: string): Promise<string> {
  const img = await makeImage({ label });
  const path = join(dir, 'layout');
  await writeOciLayout(path, [{ tag: 't', image: img }]);
  return path;
}

test('skopeo: login, copy --dest-creds as the rules say', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const fx = await startAuthRegistry({ access: ACCESS });
  const s = await scratch();
  try {
    const host = fx.reg.host;
    const authfile = join(s.dir, 'auth.json');
    const src = `oci:${await layout(s.dir, 'skopeo-auth')}:t`;
    assert.equal(
      (await skopeoMay(['login', '--tls-verify=false', '--authfile', authfile, '-u', 'alice', '-p', USERS.alice, host]))
        .code,
      0,
    );
    const bad = await skopeoMay([
      'login',
      '--tls-verify=false',
      '--authfile',
      authfile,
      '-u',
      'alice',
      '-p',
      USERS.bob,
      host,
    ]);
    assert.notEqual(bad.code, 0);
    const copy = (dest: string, creds: string[]) =>
      skopeoMay(['copy', '--dest-tls-verify=false', ...creds, src, `docker://${host}/${dest}`]);
    assert.equal((await copy('team-a/app:1', ['--dest-creds', `alice:${USERS.alice}`])).code, 0);
    assert.equal((await copy('team-a/robot:1', ['--dest-creds', `robot$builder:${fx.robots.builder}`])).code, 0);
    // The login above is used from the auth file.
    assert.equal((await copy('alice/app:1', ['--dest-authfile', authfile])).code, 0);
    const refused = await copy('team-a/app:2', ['--dest-creds', `bob:${USERS.bob}`]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /denied|unauthorized|forbidden/i);
    const anon = await skopeoMay(['inspect', '--raw', '--tls-verify=false', `docker://${host}/team-a/app:1`]);
    assert.notEqual(anon.code, 0);
    const asCarol = await skopeoMay([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      `carol:${USERS.carol}`,
      `docker://${host}/team-a/app:1`,
    ]);
    assert.equal(asCarol.code, 0, asCarol.stderr);
  } finally {
    await s.cleanup();
    await fx.close();
  }
});

test('podman: login, push and pull as the rules say', async (t) => {
  if (!needTools(t, 'podman', 'skopeo')) return;
  const fx = await startAuthRegistry({ access: ACCESS });
  const s = await scratch();
  const p = podmanIn(s.dir);
  try {
    const host = fx.reg.host;
    const authfile = join(s.dir, 'auth.json');
    const src = `oci:${await layout(s.dir, 'podman-auth')}:t`;
    await p.run(['pull', src]);
    const [id] = (await p.run(['images', '-q'])).stdout.trim().split('\n');
    await p.run(['login', '--tls-verify=false', '--authfile', authfile, '-u', 'carol', '-p', USERS.carol, host]);
    await p.run(['push', '--tls-verify=false', '--authfile', authfile, id!, `${host}/team-a/podman:1`]);
    const denied = await p.runMay([
      'push',
      '--tls-verify=false',
      '--authfile',
      authfile,
      id!,
      `${host}/public/podman:1`,
    ]);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /denied/i);
    await p.run(['push', '--tls-verify=false', '--creds', `alice:${USERS.alice}`, id!, `${host}/public/podman:1`]);
    // Anyone may pull public/, nobody anonymous may pull team-a/.
    const p2 = podmanIn(join(s.dir, 'second'));
    await p2.run(['pull', '--tls-verify=false', `${host}/public/podman:1`]);
    const anon = await p2.runMay(['pull', '--tls-verify=false', `${host}/team-a/podman:1`]);
    assert.notEqual(anon.code, 0);
    await p2.run(['pull', '--tls-verify=false', '--creds', `alice:${USERS.alice}`, `${host}/team-a/podman:1`]);
    const bad = await p2.runMay([
      'login',
      '--tls-verify=false',
      '--authfile',
      join(s.dir, 'a2.json'),
      '-u',
      'carol',
      '-p',
      'nope',
      host,
    ]);
    assert.notEqual(bad.code, 0);
  } finally {
    await s.cleanup();
    await fx.close();
  }
});

test('docker: login, push and pull against a real dockerd', async (t) => {
  if (!needTools(t, 'skopeo', 'dockerd')) return;
  if (!hasDocker()) return t.skip('docker CLI not installed');
  const fx = await startAuthRegistry({ access: ACCESS });
  const s = await scratch();
  const daemon = await startDockerd();
  const cfg = await mkdtemp(join(s.dir, 'dcfg-'));
  const docker = (args: string[]) => run(dockerCli(), ['-H', daemon.host, ...args], { env: { DOCKER_CONFIG: cfg } });
  try {
    const host = fx.reg.host;
    await runOk('skopeo', [
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      `alice:${USERS.alice}`,
      `oci:${await layout(s.dir, 'docker-auth')}:t`,
      `docker://${host}/team-a/app:1`,
    ]);
    const anon = await docker(['pull', `${host}/team-a/app:1`]);
    assert.notEqual(anon.code, 0);
    const wrong = await docker(['login', '-u', 'carol', '-p', 'not-her-password', host]);
    assert.notEqual(wrong.code, 0);
    const login = await docker(['login', '-u', 'carol', '--password-stdin', host].concat([]));
    assert.notEqual(login.code, 0, 'no password on stdin must fail');
    assert.equal(
      (
        await run(dockerCli(), ['-H', daemon.host, 'login', '-u', 'carol', '--password-stdin', host], {
          env: { DOCKER_CONFIG: cfg },
          input: USERS.carol,
        })
      ).code,
      0,
    );
    const pull = await docker(['pull', `${host}/team-a/app:1`]);
    assert.equal(pull.code, 0, pull.stderr);
    await runOk(dockerCli(), ['-H', daemon.host, 'tag', `${host}/team-a/app:1`, `${host}/carol/app:1`]);
    await runOk(dockerCli(), ['-H', daemon.host, 'tag', `${host}/team-a/app:1`, `${host}/secret/app:1`]);
    const push = await docker(['push', `${host}/carol/app:1`]);
    assert.equal(push.code, 0, push.stderr);
    const denied = await docker(['push', `${host}/secret/app:1`]);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr + denied.stdout, /denied/i);
    // What docker pushed is there for carol, and not for bob.
    const check = await skopeoMay([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      `carol:${USERS.carol}`,
      `docker://${host}/carol/app:1`,
    ]);
    assert.equal(check.code, 0, check.stderr);
    assert.notEqual(
      (
        await skopeoMay([
          'inspect',
          '--raw',
          '--tls-verify=false',
          '--creds',
          `bob:${USERS.bob}`,
          `docker://${host}/carol/app:1`,
        ])
      ).code,
      0,
    );
  } finally {
    await daemon.stop();
    await s.cleanup();
    await fx.close();
  }
});

test('ctr --user: the OAuth2 POST /token flow', async (t) => {
  if (!needTools(t, 'containerd', 'ctr', 'skopeo')) return;
  const fx = await startAuthRegistry({ access: ACCESS, audit: { path: '' } });
  const s = await scratch();
  const c = await startContainerd();
  try {
    const host = fx.reg.host;
    await runOk('skopeo', [
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      `alice:${USERS.alice}`,
      `oci:${await layout(s.dir, 'ctr-auth')}:t`,
      `docker://${host}/team-a/app:1`,
    ]);
    const anon = await c.ctr(['images', 'pull', '--plain-http', `${host}/team-a/app:1`]);
    assert.notEqual(anon.code, 0);
    const bob = await c.ctr(['images', 'pull', '--plain-http', '--user', `bob:${USERS.bob}`, `${host}/team-a/app:1`]);
    assert.notEqual(bob.code, 0);
    const badPassword = await c.ctr([
      'images',
      'pull',
      '--plain-http',
      '--user',
      `bob:${USERS.carol}`,
      `${host}/team-a/app:1`,
    ]);
    assert.notEqual(badPassword.code, 0);
    const pull = await c.ctr([
      'images',
      'pull',
      '--plain-http',
      '--user',
      `carol:${USERS.carol}`,
      `${host}/team-a/app:1`,
    ]);
    assert.equal(pull.code, 0, pull.stderr);
    await c.ctr(['images', 'tag', `${host}/team-a/app:1`, `${host}/carol/ctr:1`]);
    const push = await c.ctr([
      'images',
      'push',
      '--plain-http',
      '--user',
      `carol:${USERS.carol}`,
      `${host}/carol/ctr:1`,
    ]);
    assert.equal(push.code, 0, push.stderr);
    const check = await skopeoMay([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      `carol:${USERS.carol}`,
      `docker://${host}/carol/ctr:1`,
    ]);
    assert.equal(check.code, 0, check.stderr);
    // ctr asked for its tokens with the OAuth2 form: the wrong password was refused at POST /token.
    const audit = await readFile(join(fx.dir, 'audit.jsonl'), 'utf8');
    assert.match(
      audit,
      /"principal":"bob","address":"127.0.0.1","action":"login","decision":"denied".*"method":"POST","status":401/,
    );
    assert.match(
      audit,
      /"principal":"carol".*"repository":"carol\/ctr".*"decision":"allowed".*"method":"PUT","status":201/,
    );
  } finally {
    await c.stop();
    await s.cleanup();
    await fx.close();
  }
});
