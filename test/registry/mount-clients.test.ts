import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { scratch, skopeoMay } from '../helpers/clients.js';
import { needTools, runOk } from '../helpers/tools.js';
import { startAuthRegistry, USERS } from '../auth/fixture.js';
import { startContainerd } from '../auth/containerd.js';

test('ctr pushes as bob an image it pulled as alice: the mount from alice/app is refused with a session (202), not 403, and the push succeeds', async (t) => {
  if (!needTools(t, 'containerd', 'ctr', 'skopeo')) return;
  // Everyone owns $user/**; nobody reads anyone else's repositories.
  const fx = await startAuthRegistry({
    access: {
      rules: [{ repos: ['$user/**'], who: ['authenticated'], allow: ['pull', 'push', 'delete', 'overwrite'] }],
    },
  });
  const s = await scratch();
  const c = await startContainerd();
  try {
    const host = fx.reg.host;
    const layoutDir = join(s.dir, 'layout');
    await writeOciLayout(layoutDir, [{ tag: 't', image: await makeImage({ label: 'ctr-mount' }) }]);
    await runOk('skopeo', [
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      `alice:${USERS.alice}`,
      `oci:${layoutDir}:t`,
      `docker://${host}/alice/app:1`,
    ]);
    const pull = await c.ctr([
      'images',
      'pull',
      '--plain-http',
      '--user',
      `alice:${USERS.alice}`,
      `${host}/alice/app:1`,
    ]);
    assert.equal(pull.code, 0, pull.stderr);
    // containerd remembers where the layers came from (alice/app) and tries to mount them from there.
    await c.ctr(['images', 'tag', `${host}/alice/app:1`, `${host}/bob/app:1`]);
    const push = await c.ctr(['images', 'push', '--plain-http', '--user', `bob:${USERS.bob}`, `${host}/bob/app:1`]);
    assert.equal(push.code, 0, `${push.stdout}\n${push.stderr}`);
    const check = await skopeoMay([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      `bob:${USERS.bob}`,
      `docker://${host}/bob/app:1`,
    ]);
    assert.equal(check.code, 0, check.stderr);
    // And bob still cannot read alice's repository.
    const peek = await skopeoMay([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      `bob:${USERS.bob}`,
      `docker://${host}/alice/app:1`,
    ]);
    assert.notEqual(peek.code, 0);
  } finally {
    await c.stop();
    await s.cleanup();
    await fx.close();
  }
});
