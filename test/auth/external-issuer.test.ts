import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, importPKCS8, SignJWT, type CryptoKey } from 'jose';
import { scratch } from '../helpers/clients.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';
import { needTools, runOk } from '../helpers/tools.js';

function token(key: CryptoKey, iss: string, access: unknown, aud = 'registry.corp', kid?: string): Promise<string> {
  return new SignJWT({ access })
    .setProtectedHeader({ alg: 'ES256', ...(kid ? { kid } : {}) })
    .setIssuer(iss)
    .setSubject('ci-bot')
    .setAudience(aud)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key);
}

async function seed(): Promise<{ root: string; img: Awaited<ReturnType<typeof makeImage>> }> {
  const open = await startRegistry();
  const img = await makeImage({ label: 'ext' });
  await pushImage(open.url, 'app/one', 'v1', img);
  await open.app.close();
  return { root: open.root, img };
}

test('tokens from an external issuer (Distribution auth.token with a JWKS) decide by their access claim', async () => {
  const s = await scratch();
  const { root, img } = await seed();
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwks = join(s.dir, 'jwks.json');
  await writeFile(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'corp-1', alg: 'ES256' }] }));
  const reg = await startRegistry(
    { auth: { token: { realm: 'https://auth.corp.example/token', service: 'registry.corp', issuer: 'corp', jwks } } },
    root,
  );
  try {
    const base = await fetch(`${reg.url}/v2/`);
    assert.equal(base.status, 401);
    assert.equal(
      base.headers.get('www-authenticate'),
      'Bearer realm="https://auth.corp.example/token",service="registry.corp"',
    );
    const pullOnly = await token(
      privateKey,
      'corp',
      [{ type: 'repository', name: 'app/one', actions: ['pull'] }],
      'registry.corp',
      'corp-1',
    );
    const h = { authorization: `Bearer ${pullOnly}`, accept: img.mediaType };
    assert.equal((await fetch(`${reg.url}/v2/app/one/manifests/v1`, { headers: h })).status, 200);
    const push = await fetch(`${reg.url}/v2/app/one/blobs/uploads/`, { method: 'POST', headers: h });
    assert.equal(push.status, 401);
    assert.match(
      push.headers.get('www-authenticate') ?? '',
      /realm="https:\/\/auth\.corp\.example\/token",service="registry\.corp",scope="repository:app\/one:push,pull",error="insufficient_scope"/,
    );
    assert.equal((await fetch(`${reg.url}/v2/app/two/manifests/v1`, { headers: h })).status, 401);
    const other = await token(
      privateKey,
      'someone-else',
      [{ type: 'repository', name: 'app/one', actions: ['pull'] }],
      'registry.corp',
      'corp-1',
    );
    assert.equal(
      (await fetch(`${reg.url}/v2/app/one/manifests/v1`, { headers: { authorization: `Bearer ${other}` } })).status,
      401,
    );
    // Sluice issues no tokens of its own in this mode.
    assert.equal((await fetch(`${reg.url}/token?service=registry.corp`)).status, 404);
  } finally {
    await reg.close();
    await s.cleanup();
    await rm(root, { recursive: true, force: true });
  }
});

test('tokens from an external issuer verified with a rootcertbundle', async (t) => {
  if (!needTools(t, 'openssl')) return;
  const s = await scratch();
  const { root, img } = await seed();
  const key = join(s.dir, 'key.pem');
  const cert = join(s.dir, 'cert.pem');
  await runOk('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-subj',
    '/CN=token-signer',
    '-days',
    '2',
  ]);
  const signer = await importPKCS8(await readFile(key, 'utf8'), 'ES256');
  const reg = await startRegistry(
    {
      auth: {
        token: {
          realm: 'https://auth.corp.example/token',
          service: 'registry.corp',
          issuer: 'corp',
          rootcertbundle: cert,
        },
      },
    },
    root,
  );
  try {
    const ok = await token(signer, 'corp', [{ type: 'repository', name: 'app/one', actions: ['pull', 'push'] }]);
    assert.equal(
      (
        await fetch(`${reg.url}/v2/app/one/manifests/v1`, {
          headers: { authorization: `Bearer ${ok}`, accept: img.mediaType },
        })
      ).status,
      200,
    );
    const { privateKey: stranger } = await generateKeyPair('ES256');
    const forged = await token(stranger, 'corp', [{ type: 'repository', name: 'app/one', actions: ['pull'] }]);
    assert.equal(
      (await fetch(`${reg.url}/v2/app/one/manifests/v1`, { headers: { authorization: `Bearer ${forged}` } })).status,
      401,
    );
  } finally {
    await reg.close();
    await s.cleanup();
    await rm(root, { recursive: true, force: true });
  }
});
