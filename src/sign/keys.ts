import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  scrypt,
  type KeyObject,
} from 'node:crypto';
import nacl from 'tweetnacl';
import { keyFingerprint } from './crypto.js';

/** PEM type cosign writes for private keys since v2. */
export const SIGSTORE_KEY_PEM = 'ENCRYPTED SIGSTORE PRIVATE KEY';
/** PEM type older cosign wrote; still read. */
export const COSIGN_KEY_PEM = 'ENCRYPTED COSIGN PRIVATE KEY';

/** Thrown for a private key that cannot be read or used; the message says why in one line. */
export class PrivateKeyError extends Error {}

/** cosign's scrypt parameters (go-securesystemslib's `encrypted` package). */
export const SCRYPT = { N: 32768, r: 8, p: 1 } as const;
// Bounds on what a key file may ask for: a hostile file must not make us allocate gigabytes.
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;

function deriveKey(password: Uint8Array, salt: Uint8Array, N: number, r: number, p: number): Promise<Buffer> {
  const memory = 128 * N * r;
  // Node's default maxmem (32 MiB) is below what N=32768, r=8 needs (32 MiB plus overhead).
  return new Promise((resolve, reject) =>
    scrypt(password, salt, 32, { N, r, p, maxmem: 2 * memory + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

function pem(type: string, body: Buffer): string {
  const b64 = body.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${type}-----\n${b64}\n-----END ${type}-----\n`;
}

/** The first PEM block in `text`: its type and decoded body. */
export function readPemBlock(text: string): { type: string; body: Buffer } | undefined {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) return undefined;
  return { type: m[1]!, body: Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64') };
}

/** Encrypts a PKCS#8 private key as cosign does: scrypt (N=32768, r=8, p=1) then nacl secretbox, as a PEM block. */
export async function encryptPrivateKey(
  pkcs8: Buffer,
  password: string,
  type: string = SIGSTORE_KEY_PEM,
): Promise<string> {
  const salt = randomBytes(32);
  const nonce = randomBytes(nacl.secretbox.nonceLength);
  const key = await deriveKey(Buffer.from(password, 'utf8'), salt, SCRYPT.N, SCRYPT.r, SCRYPT.p);
  const ciphertext = nacl.secretbox(new Uint8Array(pkcs8), new Uint8Array(nonce), new Uint8Array(key));
  const doc = {
    kdf: { name: 'scrypt', params: { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(ciphertext).toString('base64'),
  };
  return pem(type, Buffer.from(JSON.stringify(doc)));
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Decrypts a cosign private key (`ENCRYPTED SIGSTORE PRIVATE KEY` or the older `ENCRYPTED COSIGN
 * PRIVATE KEY`) with its password; the scrypt parameters come from the file, within bounds.
 */
export async function decryptPrivateKey(text: string, password: string, name = 'private key'): Promise<KeyObject> {
  const block = readPemBlock(text);
  if (!block) throw new PrivateKeyError(`${name}: no PEM block`);
  if (block.type !== SIGSTORE_KEY_PEM && block.type !== COSIGN_KEY_PEM) {
    throw new PrivateKeyError(
      `${name}: PEM type "${block.type}" is not a cosign key (${SIGSTORE_KEY_PEM} or ${COSIGN_KEY_PEM}); import other keys with cosign import-key-pair`,
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(block.body.toString('utf8'));
  } catch {
    throw new PrivateKeyError(`${name}: the encrypted key is not cosign's JSON`);
  }
  if (!isObject(doc) || !isObject(doc.kdf) || !isObject(doc.cipher) || typeof doc.ciphertext !== 'string')
    throw new PrivateKeyError(`${name}: missing kdf, cipher or ciphertext`);
  const { kdf, cipher } = doc;
  if (kdf.name !== 'scrypt' || !isObject(kdf.params) || typeof kdf.salt !== 'string')
    throw new PrivateKeyError(`${name}: key derivation ${JSON.stringify(kdf.name)} is not scrypt`);
  if (cipher.name !== 'nacl/secretbox' || typeof cipher.nonce !== 'string')
    throw new PrivateKeyError(`${name}: cipher ${JSON.stringify(cipher.name)} is not nacl/secretbox`);
  const { N, r, p } = kdf.params as { N: unknown; r: unknown; p: unknown };
  const ints = [N, r, p].every((v) => Number.isSafeInteger(v) && (v as number) > 0);
  if (
    !ints ||
    ((N as number) & ((N as number) - 1)) !== 0 ||
    128 * (N as number) * (r as number) > MAX_SCRYPT_MEMORY ||
    (p as number) > 16
  ) {
    throw new PrivateKeyError(
      `${name}: scrypt parameters N=${String(N)} r=${String(r)} p=${String(p)} are out of bounds`,
    );
  }
  const nonce = Buffer.from(cipher.nonce, 'base64');
  if (nonce.length !== nacl.secretbox.nonceLength)
    throw new PrivateKeyError(`${name}: nonce is not ${nacl.secretbox.nonceLength} bytes`);
  const key = await deriveKey(
    Buffer.from(password, 'utf8'),
    Buffer.from(kdf.salt, 'base64'),
    N as number,
    r as number,
    p as number,
  );
  const plain = nacl.secretbox.open(
    new Uint8Array(Buffer.from(doc.ciphertext, 'base64')),
    new Uint8Array(nonce),
    new Uint8Array(key),
  );
  if (!plain) throw new PrivateKeyError(`${name}: wrong password (or a damaged key file)`);
  const der = Buffer.from(plain);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch {
    // Some early cosign keys hold a SEC1 EC key rather than PKCS#8; cosign itself no longer reads them.
    try {
      return createPrivateKey({ key: der, format: 'der', type: 'sec1' });
    } catch {
      throw new PrivateKeyError(`${name}: decrypted, but the content is neither a PKCS#8 nor a SEC1 private key`);
    }
  }
}

/** A key pair as files hold it. */
export interface KeyPairPem {
  privateKey: string;
  publicKey: string;
  fingerprint: string;
}

/** Generates an ECDSA P-256 key pair: the private key encrypted as cosign writes it, the public key as PEM. */
export async function generateKeyPair(password: string): Promise<KeyPairPem> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  return {
    privateKey: await encryptPrivateKey(pkcs8, password),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    fingerprint: keyFingerprint(publicKey),
  };
}

/** Refuses keys Sluice does not sign with: only ECDSA P-256, cosign's default. */
export function checkSigningKey(key: KeyObject, name = 'private key'): KeyObject {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
    throw new PrivateKeyError(
      `${name}: a ${key.asymmetricKeyType ?? 'unknown'}${curve ? ` ${curve}` : ''} key; Sluice signs with ECDSA P-256 keys only`,
    );
  }
  return key;
}

/** The public half of a private key, as PEM. */
export function publicPemOf(key: KeyObject): string {
  return createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
}
