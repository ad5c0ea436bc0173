import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createRobot, deleteRobot } from '../../src/auth/robots.js';
import { basic, startAuthRegistry, USERS, writeHtpasswd } from './fixture.js';

const form = (fields: Record<string, string>) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ service: 'sluice', scope: 'repository:alice/app:pull', ...fields }).toString(),
});

/** Mints a refresh token with the OAuth2 password grant (what ctr and containerd do). */
async function mint(url: string, username: string, password: string): Promise<string> {
  const r = await fetch(
    `${url}/token`,
    form({ grant_type: 'password', username, password, access_type: 'offline', client_id: 'test' }),
  );
  assert.equal(r.status, 200, await r.clone().text());
  const body = (await r.json()) as { refresh_token?: string };
  assert.ok(body.refresh_token, 'an offline password grant returns a refresh token');
  return body.refresh_token;
}

async function refresh(url: string, token: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`${url}/token`, form({ grant_type: 'refresh_token', refresh_token: token, client_id: 'test' }));
  return { status: r.status, body: await r.text() };
}

test('a refresh token stops working when the password it was minted under changes, even if the user is re-created', async () => {
  const fx = await startAuthRegistry();
  const url = fx.reg.url;
  const htpasswd = join(fx.dir, 'htpasswd');
  try {
    const first = await mint(url, 'alice', USERS.alice);
    assert.equal((await refresh(url, first)).status, 200, 'works while nothing changed');

    // The password changes in the file; no restart, no waiting: the next refresh must be refused.
    await writeHtpasswd(htpasswd, { ...USERS, alice: 'alice-new-password-1' });
    const changed = await refresh(url, first);
    assert.equal(changed.status, 401, changed.body);
    assert.match(changed.body, /credentials changed/);
    // Changed back to the old password: a new hash (new salt), so the token stays dead.
    await writeHtpasswd(htpasswd, USERS);
    assert.equal((await refresh(url, first)).status, 401);

    // A fresh token, then alice is deleted and re-created with the very same password.
    const second = await mint(url, 'alice', USERS.alice);
    assert.equal((await refresh(url, second)).status, 200);
    const { alice: _gone, ...others } = USERS;
    await writeHtpasswd(htpasswd, others);
    assert.equal((await refresh(url, second)).status, 401, 'a deleted user');
    await writeHtpasswd(htpasswd, USERS);
    assert.equal((await refresh(url, second)).status, 401, 'a re-created user does not revive old refresh tokens');
    // Logging in again gives a token that works: the refusals above are about binding, not a broken grant.
    assert.equal((await refresh(url, await mint(url, 'alice', USERS.alice))).status, 200);

    // GET /token?offline_token=true (Docker's flow) is bound the same way.
    const got = await fetch(`${url}/token?service=sluice&offline_token=true&scope=repository:bob/app:pull`, {
      headers: { authorization: basic('bob', USERS.bob) },
    });
    const viaGet = ((await got.json()) as { refresh_token: string }).refresh_token;
    assert.equal((await refresh(url, viaGet)).status, 200);
    await writeHtpasswd(htpasswd, { ...USERS, bob: 'bob-new-password-2' });
    assert.equal((await refresh(url, viaGet)).status, 401);
  } finally {
    await fx.close();
  }
});

test('a robot refresh token stops working when the robot is deleted and re-created under the same name', async () => {
  const fx = await startAuthRegistry();
  const url = fx.reg.url;
  try {
    const token = await mint(url, 'robot$builder', fx.robots.builder!);
    assert.equal((await refresh(url, token)).status, 200);
    assert.equal(await deleteRobot(fx.robotsPath, 'builder'), true);
    assert.equal((await refresh(url, token)).status, 401, 'a deleted robot');
    const again = await createRobot(fx.robotsPath, 'builder');
    assert.equal(
      (await refresh(url, token)).status,
      401,
      'a re-created robot has a new token, so old refresh tokens stay dead',
    );
    assert.equal((await refresh(url, await mint(url, 'robot$builder', again.token))).status, 200);
  } finally {
    await fx.close();
  }
});
