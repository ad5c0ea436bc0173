import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { exportPKCS8, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey } from 'jose';
import { bcryptStats } from '../../src/auth/htpasswd.js';
import { robotStats } from '../../src/auth/robots.js';
import { validateConfig } from '../../src/config/load.js';
import { buildRegistry } from '../../src/registry/server.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';
import { basic, EXAMPLE_ACCESS, startAuthRegistry, USERS, writeHtpasswd } from './fixture.js';

async function keyFile(dir: string): Promise<{ path: string; key: CryptoKey }> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const path = join(dir, 'issuer.pem');
  await writeFile(path, await exportPKCS8(privateKey));
  return { path, key: privateKey };
}

function sign(
  key: CryptoKey,
  claims: { sub?: string; iss?: string; aud?: string; exp?: number; access?: unknown },
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ access: claims.access ?? [] })
    .setProtectedHeader({ alg: 'ES256', kid: 'k' })
    .setSubject(claims.sub ?? 'alice')
    .setIssuer(claims.iss ?? 'sluice')
    .setAudience(claims.aud ?? 'sluice')
    .setIssuedAt(now)
    .setExpirationTime(claims.exp ?? now + 300)
    .sign(key);
}

/** Seeds repositories through an open registry, then starts the access-controlled one on the same storage. */
async function seeded(repos: string[], opts: Parameters<typeof startAuthRegistry>[0] = {}) {
  const open = await startRegistry();
  const img = await makeImage({ label: 'attack' });
  for (const r of repos) await pushImage(open.url, r, 'seed', img);
  await open.app.close();
  return { fx: await startAuthRegistry({ ...opts, root: open.root }), img };
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

test('forged, expired, altered, unsigned and foreign tokens are refused', async (t) => {
  const { fx, img } = await seeded(['alice/app', 'team-a/app', 'secret/app']);
  const { path, key } = await keyFile(fx.dir);
  await fx.reg.app.close();
  const { fx: fx2 } = await (async () => ({
    fx: await startAuthRegistry({ root: fx.reg.root, auth: { issuer: { key: path } } }),
  }))();
  const url = fx2.reg.url;
  const manifest = (repo: string, h: Record<string, string>) =>
    fetch(`${url}/v2/${repo}/manifests/seed`, { headers: { ...h, accept: img.mediaType } });
  try {
    const tok = async (scope: string) =>
      (
        (await (
          await fetch(`${url}/token?service=sluice&scope=${scope}`, {
            headers: { authorization: basic('alice', USERS.alice) },
          })
        ).json()) as { token: string }
      ).token;
    const good = await tok('repository:alice/app:pull');
    assert.equal((await manifest('alice/app', bearer(good))).status, 200);

    await t.test('a token for repository A used on B', async () => {
      const onB = await manifest('team-a/app', bearer(good));
      assert.equal(onB.status, 401, 'alice may pull team-a/app, but not with this token');
      assert.match(
        onB.headers.get('www-authenticate') ?? '',
        /scope="repository:team-a\/app:pull",error="insufficient_scope"/,
      );
      const onSecret = await manifest('secret/app', bearer(good));
      assert.equal(onSecret.status, 403);
      assert.match(await onSecret.text(), /no rule allows it/);
      // A scope the policy refuses is left out of the token entirely.
      const t2 = await tok('repository:secret/app:pull');
      assert.equal((await manifest('secret/app', bearer(t2))).status, 403);
    });

    await t.test('an expired token', async () => {
      const old = await sign(key, {
        exp: Math.floor(Date.now() / 1000) - 10,
        access: [{ type: 'repository', name: 'alice/app', actions: ['pull'] }],
      });
      const r = await manifest('alice/app', bearer(old));
      assert.equal(r.status, 401);
      assert.match(r.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
      assert.match(await r.text(), /expired/);
    });

    await t.test('a token whose payload was changed', async () => {
      const [h, p, s] = good.split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
      claims.access = [{ type: 'repository', name: 'secret/app', actions: ['pull', 'push'] }];
      const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
      const r = await manifest('secret/app', bearer(forged));
      assert.equal(r.status, 401);
      assert.match(await r.text(), /bad signature/);
    });

    await t.test('alg: none', async () => {
      const none = new UnsecuredJWT({ access: [{ type: 'repository', name: 'secret/app', actions: ['pull'] }] })
        .setSubject('alice')
        .setIssuer('sluice')
        .setAudience('sluice')
        .setExpirationTime('5m')
        .encode();
      const r = await manifest('secret/app', bearer(none));
      assert.equal(r.status, 401);
      // The same with an empty signature tacked onto a real header.
      const [, p] = good.split('.');
      const r2 = await manifest(
        'alice/app',
        bearer(`${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${p}.`),
      );
      assert.equal(r2.status, 401);
    });

    await t.test('a token from another issuer or for another service', async () => {
      const access = [{ type: 'repository', name: 'secret/app', actions: ['pull'] }];
      assert.equal((await manifest('secret/app', bearer(await sign(key, { iss: 'evil', access })))).status, 401);
      assert.equal(
        (await manifest('secret/app', bearer(await sign(key, { aud: 'other-registry', access })))).status,
        401,
      );
      const { privateKey: otherKey } = await generateKeyPair('ES256');
      assert.equal((await manifest('secret/app', bearer(await sign(otherKey, { access })))).status, 401);
      // The configured key signs tokens the registry does accept, so the refusals above are about the claims.
      const own = [{ type: 'repository', name: 'alice/app', actions: ['pull'] }];
      assert.equal((await manifest('alice/app', bearer(await sign(key, { access: own })))).status, 200);
      // Even a validly signed token is only a ceiling: the policy still refuses what it never allowed.
      const forged = await manifest('secret/app', bearer(await sign(key, { access })));
      assert.equal(forged.status, 403);
      assert.match(await forged.text(), /no rule allows it/);
    });

    await t.test('a refresh token is not an access token', async () => {
      const r = await fetch(`${url}/token?service=sluice&offline_token=true&scope=repository:alice/app:pull`, {
        headers: { authorization: basic('alice', USERS.alice) },
      });
      const { refresh_token } = (await r.json()) as { refresh_token: string };
      assert.ok(refresh_token);
      assert.equal((await manifest('alice/app', bearer(refresh_token))).status, 401);
    });
  } finally {
    await fx2.close();
    await fx.close();
  }
});

test('robot tokens after expiry, wrong passwords and unknown users are refused with the same work', async () => {
  const { fx, img } = await seeded(['team-a/app']);
  const url = fx.reg.url;
  const get = (h: Record<string, string>) =>
    fetch(`${url}/v2/team-a/app/manifests/seed`, { headers: { ...h, accept: img.mediaType } });
  try {
    assert.equal((await get({ authorization: basic('robot$builder', fx.robots.builder!) })).status, 200);
    // The `old` robot exists but expired a minute ago.
    assert.equal((await get({ authorization: basic('robot$old', fx.robots.old!) })).status, 401);
    const tr = await fetch(`${url}/token?service=sluice&scope=repository:team-a/app:pull`, {
      headers: { authorization: basic('robot$old', fx.robots.old!) },
    });
    assert.equal(tr.status, 401);
    // One robot's token is not another's.
    assert.equal((await get({ authorization: basic('robot$builder', fx.robots.old!) })).status, 401);

    // Bob's password does not open alice's account.
    const before = bcryptStats.compares;
    const wrong = await get({ authorization: basic('alice', USERS.bob) });
    assert.equal(wrong.status, 401);
    assert.match(wrong.headers.get('www-authenticate') ?? '', /^Bearer realm=/);
    assert.equal(bcryptStats.compares - before, 1);
    // An unknown user costs exactly the same one bcrypt comparison (against a dummy hash of the same cost).
    const mid = bcryptStats.compares;
    assert.equal((await get({ authorization: basic('mallory', USERS.alice) })).status, 401);
    assert.equal(bcryptStats.compares - mid, 1);
    // Unknown robots go through the same constant-time comparison as known ones.
    const rb = robotStats.compares;
    assert.equal((await get({ authorization: basic('robot$ghost', fx.robots.builder!) })).status, 401);
    assert.equal(robotStats.compares - rb, 1);
    // OAuth2 password grant refuses the same way.
    const post = await fetch(`${url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'password',
        username: 'alice',
        password: USERS.bob,
        service: 'sluice',
        scope: 'repository:team-a/app:pull',
      }).toString(),
    });
    assert.equal(post.status, 401);
  } finally {
    await fx.close();
  }
});

function rawGet(url: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('names that try .. never reach another repository', async () => {
  const { fx } = await seeded(['alice/app', 'secret/app']);
  const h = { authorization: basic('alice', USERS.alice) };
  try {
    for (const path of [
      '/v2/alice/../secret/app/manifests/seed',
      '/v2/alice/%2e%2e/secret/app/manifests/seed',
      '/v2/alice/..%2fsecret/app/manifests/seed',
      '/v2/alice/app/../../secret/app/tags/list',
    ]) {
      const r = await rawGet(fx.reg.url, path, h);
      assert.ok(r.status === 400 || r.status === 404, `${path}: ${r.status} ${r.body}`);
      assert.doesNotMatch(r.body, /"tags"|schemaVersion/);
    }
    // Scopes naming such paths are dropped, never granted.
    const tr = await fetch(`${fx.reg.url}/token?service=sluice&scope=repository:alice/../secret/app:pull`, {
      headers: h,
    });
    const { token } = (await tr.json()) as { token: string };
    assert.deepEqual(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).access, []);
  } finally {
    await fx.close();
  }
});

test('passwords and tokens never appear in the server log or the audit log', async () => {
  const { fx } = await seeded(['alice/app']);
  await fx.reg.app.close();
  const audit = join(fx.dir, 'audit.jsonl');
  let logText = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      logText += chunk;
      cb();
    },
  });
  const htpasswd = join(fx.dir, 'htpasswd');
  await writeHtpasswd(htpasswd, USERS);
  const { config } = validateConfig({
    log: { level: 'trace' },
    storage: { filesystem: { rootdirectory: fx.reg.root }, delete: { enabled: true } },
    auth: { htpasswd: { path: htpasswd }, robots: { path: fx.robotsPath } },
    access: EXAMPLE_ACCESS,
    audit: { path: audit },
  });
  const reg = buildRegistry({ config, logger: { level: 'trace', stream, redact: ['req.headers.authorization'] } });
  const url = await reg.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const secrets = [USERS.alice, USERS.bob, fx.robots.builder!];
    const tr = await fetch(`${url}/token?service=sluice&offline_token=true&scope=repository:alice/app:pull,push`, {
      headers: { authorization: basic('alice', USERS.alice) },
    });
    const body = (await tr.json()) as { token: string; refresh_token: string };
    secrets.push(body.token, body.refresh_token);
    await fetch(`${url}/v2/alice/app/manifests/seed`, { headers: { authorization: `Bearer ${body.token}` } });
    await fetch(`${url}/v2/alice/app/manifests/seed`, { headers: { authorization: basic('alice', USERS.bob) } });
    await fetch(`${url}/v2/secret/app/manifests/seed`, {
      headers: { authorization: basic('robot$builder', fx.robots.builder!) },
    });
    await fetch(`${url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: body.refresh_token,
        service: 'sluice',
      }).toString(),
    });
    await fetch(`${url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'password',
        username: 'bob',
        password: USERS.bob,
        service: 'sluice',
      }).toString(),
    });
    await reg.app.close();
    const auditText = await readFile(audit, 'utf8');
    assert.ok(logText.length > 0 && auditText.length > 0);
    assert.match(auditText, /"principal":"alice".*"decision":"denied"/);
    assert.match(
      auditText,
      /"principal":"robot:builder","address":"127.0.0.1","action":"pull","repository":"secret\/app","reference":"seed","decision":"denied","rule":"default"/,
    );
    for (const s of secrets) {
      assert.ok(!logText.includes(s), 'a secret is in the server log');
      assert.ok(!auditText.includes(s), 'a secret is in the audit log');
      assert.ok(!logText.includes(Buffer.from(`alice:${USERS.alice}`).toString('base64')));
    }
  } finally {
    await reg.app.close();
    await fx.close();
  }
});
