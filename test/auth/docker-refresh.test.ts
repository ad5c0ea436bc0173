import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { scratch } from '../helpers/clients.js';
import { dockerCli, hasDocker, startDockerd } from '../helpers/dockerd.js';
import { needTools, run, runOk } from '../helpers/tools.js';
import { startAuthRegistry, USERS, writeHtpasswd } from './fixture.js';

// `docker login` against a token service asks for an offline token and keeps only the refresh token (the
// "identitytoken" in config.json); every later pull trades it in with grant_type=refresh_token. So a password
// change must end that login, as it would for a client that kept the password.
test('docker: a login kept as an identity token ends when the password changes', async (t) => {
  if (!needTools(t, 'skopeo', 'dockerd')) return;
  if (!hasDocker()) return t.skip('docker CLI not installed');
  const fx = await startAuthRegistry({ audit: { path: '' } });
  const s = await scratch();
  const daemon = await startDockerd();
  const cfg = await mkdtemp(join(s.dir, 'dcfg-'));
  const docker = (args: string[], input?: string) =>
    run(dockerCli(), ['-H', daemon.host, ...args], { env: { DOCKER_CONFIG: cfg }, input });
  try {
    const host = fx.reg.host;
    const layout = join(s.dir, 'layout');
    await writeOciLayout(layout, [{ tag: 't', image: await makeImage({ label: 'docker-refresh' }) }]);
    await runOk('skopeo', [
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      `carol:${USERS.carol}`,
      `oci:${layout}:t`,
      `docker://${host}/carol/app:1`,
    ]);
    const login = await docker(['login', '-u', 'carol', '--password-stdin', host], USERS.carol);
    assert.equal(login.code, 0, login.stderr);
    const saved = JSON.parse(await readFile(join(cfg, 'config.json'), 'utf8')) as {
      auths: Record<string, { identitytoken?: string; auth?: string }>;
    };
    assert.ok(
      saved.auths[host]?.identitytoken,
      `docker kept a refresh token, not the password: ${JSON.stringify(Object.keys(saved.auths[host] ?? {}))}`,
    );
    const pull = await docker(['pull', `${host}/carol/app:1`]);
    assert.equal(pull.code, 0, pull.stderr);
    await runOk(dockerCli(), ['-H', daemon.host, 'rmi', `${host}/carol/app:1`]);

    await writeHtpasswd(join(fx.dir, 'htpasswd'), { ...USERS, carol: 'carol-changed-password-9' });
    const after = await docker(['pull', `${host}/carol/app:1`]);
    assert.notEqual(after.code, 0, 'the old login must not pull after the password changed');
    const audit = await readFile(join(fx.dir, 'audit.jsonl'), 'utf8');
    assert.match(
      audit,
      /"action":"login","decision":"denied","reason":"token rejected: the credentials changed since it was issued","method":"POST","status":401/,
    );
    // Logging in with the new password works again.
    assert.equal(
      (await docker(['login', '-u', 'carol', '--password-stdin', host], 'carol-changed-password-9')).code,
      0,
    );
    const again = await docker(['pull', `${host}/carol/app:1`]);
    assert.equal(again.code, 0, again.stderr);
  } finally {
    await daemon.stop();
    await s.cleanup();
    await fx.close();
  }
});
