import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import {
  checkSigningKey,
  decryptPrivateKey,
  encryptPrivateKey,
  generateKeyPair,
  COSIGN_KEY_PEM,
  PrivateKeyError,
} from '../../src/sign/keys.js';

test('a generated key pair round-trips: the private key decrypts to the public key written beside it', async () => {
  const pair = await generateKeyPair('pw');
  assert.match(
    pair.privateKey,
    /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n(?:[A-Za-z0-9+/=]{64}\n)*[A-Za-z0-9+/=]{1,64}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n$/,
  );
  const key = await decryptPrivateKey(pair.privateKey, 'pw');
  const { publicPemOf } = await import('../../src/sign/keys.js');
  assert.equal(publicPemOf(key), pair.publicKey);
  await assert.rejects(decryptPrivateKey(pair.privateKey, 'pw '), /wrong password/);
});

test('the older ENCRYPTED COSIGN PRIVATE KEY label is written and read the same way', async () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pem = await encryptPrivateKey(privateKey.export({ type: 'pkcs8', format: 'der' }), '', COSIGN_KEY_PEM);
  assert.match(pem, /^-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----/);
  // An empty password is what COSIGN_PASSWORD="" gives cosign; it works here too.
  assert.equal((await decryptPrivateKey(pem, '')).asymmetricKeyDetails?.namedCurve, 'prime256v1');
});

test('a key file asking for huge scrypt memory is refused before any work; other PEM types are named', async () => {
  const doc = {
    kdf: { name: 'scrypt', params: { N: 2 ** 24, r: 8, p: 1 }, salt: 'AA==' },
    cipher: { name: 'nacl/secretbox', nonce: Buffer.alloc(24).toString('base64') },
    ciphertext: 'AA==',
  };
  const pem = `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${Buffer.from(JSON.stringify(doc)).toString('base64')}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`;
  const t0 = Date.now();
  await assert.rejects(
    decryptPrivateKey(pem, 'x', 'big.key'),
    /big\.key: scrypt parameters N=16777216 r=8 p=1 are out of bounds/,
  );
  assert.ok(Date.now() - t0 < 1000);
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    .privateKey.export({ type: 'sec1', format: 'pem' })
    .toString();
  await assert.rejects(
    decryptPrivateKey(ec, 'x', 'plain.key'),
    (e: Error) => e instanceof PrivateKeyError && /PEM type "EC PRIVATE KEY" is not a cosign key/.test(e.message),
  );
});

test('Sluice signs with ECDSA P-256 only and says so for other keys', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  assert.throws(() => checkSigningKey(rsa, 'rsa.key'), /rsa\.key: a rsa key; Sluice signs with ECDSA P-256 keys only/);
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
  assert.throws(() => checkSigningKey(p384), /ec secp384r1/);
});
