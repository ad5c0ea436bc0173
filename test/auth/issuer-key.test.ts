import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { jwtVerify } from 'jose';
import { validateConfig } from '../../src/config/load.js';
import { buildRegistry } from '../../src/registry/server.js';
import { scratch } from '../helpers/clients.js';
import { startRegistry } from '../helpers/registry.js';
import { needTools, runOk } from '../helpers/tools.js';
import { basic, startAuthRegistry, USERS } from './fixture.js';

async function token(url: string): Promise<string> {
  const r = await fetch(`${url}/token?service=sluice&scope=repository:alice/app:pull`, {
    headers: { authorization: basic('alice', USERS.alice) },
  });
  assert.equal(r.status, 200);
  return ((await r.json()) as { token: string }).token;
}

test('an EC key in SEC1 form (openssl ecparam -genkey) signs tokens', async (t) => {
  if (!needTools(t, 'openssl')) return;
  const s = await scratch();
  const key = join(s.dir, 'k.pem');
  await runOk('openssl', ['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', key]);
  assert.match(await readFile(key, 'utf8'), /^-----BEGIN EC PRIVATE KEY-----/);
  const fx = await startAuthRegistry({ auth: { issuer: { key } } });
  try {
    const tok = await token(fx.reg.url);
    // Signed with that very key: its public half verifies the token.
    const pub = createPublicKey(createPrivateKey(await readFile(key, 'utf8')));
    const { payload } = await jwtVerify(tok, pub, { issuer: 'sluice', audience: 'sluice' });
    assert.equal(payload.sub, 'alice');
    assert.equal((await fetch(`${fx.reg.url}/v2/`, { headers: { authorization: `Bearer ${tok}` } })).status, 200);
  } finally {
    await fx.close();
    await s.cleanup();
  }
});

test('a configured key file that does not exist is created (P-256, PKCS#8, 0600), logged, and reused on the next start', async () => {
  const s = await scratch();
  const key = join(s.dir, 'token-key.pem');
  let log = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      log += chunk;
      cb();
    },
  });
  const fx = await startAuthRegistry();
  await fx.reg.app.close();
  const { config } = validateConfig({
    log: { level: 'info' },
    storage: { filesystem: { rootdirectory: fx.reg.root } },
    auth: { htpasswd: { path: join(fx.dir, 'htpasswd') }, issuer: { key } },
  });
  const first = buildRegistry({ config, logger: { level: 'info', stream } });
  const url = await first.app.listen({ host: '127.0.0.1', port: 0 });
  let tok: string;
  let pem: string;
  try {
    const st = await stat(key);
    assert.equal(st.mode & 0o777, 0o600);
    pem = await readFile(key, 'utf8');
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----/);
    const k = createPrivateKey(pem);
    assert.equal(k.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const line = log.split('\n').find((l) => l.includes(key));
    assert.ok(line, `the log names the new key file: ${log}`);
    assert.equal((JSON.parse(line) as { level: number }).level, 30, 'at info level');
    tok = await token(url);
  } finally {
    await first.app.close();
  }
  // The second start reads the same key, so tokens issued before the restart stay valid.
  const second = await startRegistry(
    { auth: { htpasswd: { path: join(fx.dir, 'htpasswd') }, issuer: { key } } },
    fx.reg.root,
  );
  try {
    assert.equal(await readFile(key, 'utf8'), pem);
    assert.equal((await fetch(`${second.url}/v2/`, { headers: { authorization: `Bearer ${tok}` } })).status, 200);
  } finally {
    await second.close();
    await fx.close();
    await s.cleanup();
  }
});

test('keys that cannot sign ES256 tokens stop the start with an error naming auth.issuer.key', async () => {
  const s = await scratch();
  const start = (key: string) =>
    startRegistry({ auth: { htpasswd: { path: join(s.dir, 'users') }, issuer: { key } } }, join(s.dir, 'data'));
  try {
    await writeFile(join(s.dir, 'users'), '');
    const rsa = join(s.dir, 'rsa.pem');
    await writeFile(
      rsa,
      generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
    );
    await assert.rejects(
      start(rsa),
      (e: Error) => e.message.startsWith(`auth.issuer.key: ${rsa} is a rsa key`) && /P-256/.test(e.message),
    );
    const p384 = join(s.dir, 'p384.pem');
    await writeFile(
      p384,
      generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'sec1', format: 'pem' }),
    );
    await assert.rejects(start(p384), /auth\.issuer\.key: .* is a ec secp384r1 key/);
    const junk = join(s.dir, 'junk.pem');
    await writeFile(junk, 'not a key\n');
    await assert.rejects(start(junk), /auth\.issuer\.key: .*junk\.pem is not a PEM private key/);
    const noFolder = join(s.dir, 'missing-folder', 'key.pem');
    await assert.rejects(start(noFolder), {
      message: `auth.issuer.key: ${noFolder} cannot be created: the folder ${join(s.dir, 'missing-folder')} does not exist`,
    });
    await mkdir(join(s.dir, 'a-dir'));
    await assert.rejects(start(join(s.dir, 'a-dir')), {
      message: `auth.issuer.key: ${join(s.dir, 'a-dir')} is a directory`,
    });
  } finally {
    await s.cleanup();
  }
});
