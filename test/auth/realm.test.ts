import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { basic, jwtPayload, startAuthRegistry, USERS } from './fixture.js';

/** A GET with a Host header of our choosing (fetch will not send a forged one). */
function getWithHost(
  url: string,
  path: string,
  host: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; challenge: string; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path, method: 'GET', headers: { ...headers, host }, agent: false },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, challenge: String(res.headers['www-authenticate'] ?? ''), body }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('the token realm in a challenge never comes from the Host header unless configured to', async () => {
  const fx = await startAuthRegistry();
  try {
    const r = await getWithHost(fx.reg.url, '/v2/', 'evil.example:443');
    assert.equal(r.status, 401);
    // The realm is where clients send passwords: it must be this server, reached the way the client reached it.
    assert.equal(r.challenge, `Bearer realm="http://${fx.reg.host}/token",service="sluice"`);
    const scoped = await getWithHost(fx.reg.url, '/v2/team-a/app/manifests/x', 'evil.example');
    assert.doesNotMatch(scoped.challenge, /evil/);
  } finally {
    await fx.close();
  }

  // http.host (Distribution's externally reachable URL) names the realm's server.
  const withHost = await startAuthRegistry({ config: { http: { host: 'https://registry.example.com/' } } });
  try {
    const r = await getWithHost(withHost.reg.url, '/v2/', 'evil.example');
    assert.match(r.challenge, /^Bearer realm="https:\/\/registry\.example\.com\/token",/);
  } finally {
    await withHost.close();
  }

  // Only an explicit option lets the Host header decide (a registry behind a proxy that sets it).
  const fromHost = await startAuthRegistry({ auth: { issuer: { realmfromhost: true } } });
  try {
    const r = await getWithHost(fromHost.reg.url, '/v2/', 'registry.internal:5000');
    assert.match(r.challenge, /^Bearer realm="http:\/\/registry\.internal:5000\/token",/);
  } finally {
    await fromHost.close();
  }
});

test('the token service signs a requested service only when it is one of ours', async () => {
  const fx = await startAuthRegistry({ auth: { issuer: { service: ['sluice', 'registry.example'] } } });
  const url = fx.reg.url;
  const token = async (service: string) => {
    const r = await fetch(`${url}/token?service=${encodeURIComponent(service)}&scope=repository:alice/app:pull`, {
      headers: { authorization: basic('alice', USERS.alice) },
    });
    assert.equal(r.status, 200);
    return ((await r.json()) as { token: string }).token;
  };
  try {
    assert.equal(jwtPayload(await token('sluice')).aud, 'sluice');
    const other = await token('registry.example');
    assert.equal(jwtPayload(other).aud, 'registry.example');
    // A token for any of our names works here.
    assert.equal((await fetch(`${url}/v2/`, { headers: { authorization: `Bearer ${other}` } })).status, 200);
    // A service that is not ours is never signed: the token is for our own (first) name.
    assert.equal(jwtPayload(await token('victim-registry.example')).aud, 'sluice');
    const post = await fetch(`${url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'password',
        username: 'alice',
        password: USERS.alice,
        service: 'victim-registry.example',
      }).toString(),
    });
    assert.equal(jwtPayload(((await post.json()) as { access_token: string }).access_token).aud, 'sluice');
    // Challenges carry the first name.
    assert.match((await fetch(`${url}/v2/`)).headers.get('www-authenticate') ?? '', /service="sluice"/);
  } finally {
    await fx.close();
  }
});
