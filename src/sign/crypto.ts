import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type { TrustedKey } from './types.js';

/** Thrown for text that is not a usable public key. */
export class KeyError extends Error {}

// Parsed KeyObjects by PEM: parsing costs more than verifying a cached result, and keys are few.
const parsed = new Map<string, KeyObject>();

function keyObject(pem: string): KeyObject {
  let k = parsed.get(pem);
  if (!k) {
    k = createPublicKey(pem);
    if (parsed.size > 1000) parsed.clear();
    parsed.set(pem, k);
  }
  return k;
}

/** `SHA256:<base64>` of a public key's DER SubjectPublicKeyInfo: the same for the same key however it is written. */
export function keyFingerprint(key: KeyObject): string {
  const der = key.export({ type: 'spki', format: 'der' });
  return `SHA256:${createHash('sha256').update(der).digest('base64').replace(/=+$/, '')}`;
}

/** Reads a PEM public key (or a certificate's key) as a TrustedKey; `name` says where it came from. */
export function trustedKeyFromPem(pem: string, name: string): TrustedKey {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (e) {
    throw new KeyError(`${name}: not a PEM public key (${(e as Error).message})`);
  }
  if (key.type !== 'public') throw new KeyError(`${name}: not a public key`);
  const spki = key.export({ type: 'spki', format: 'pem' }).toString();
  return { name, fingerprint: keyFingerprint(key), pem: spki };
}

/** The hash a key's signatures use, as cosign pairs them: SHA-256 for P-256 and RSA, SHA-384/512 for the larger curves, none for Ed25519. */
function hashFor(key: KeyObject): string | null {
  if (key.asymmetricKeyType === 'ed25519') return null;
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'secp384r1') return 'sha384';
    if (curve === 'secp521r1') return 'sha512';
  }
  return 'sha256';
}

/** Largest base64 signature read (an ECDSA P-521 or RSA-4096 signature is well under 1 KiB). */
export const MAX_SIGNATURE_BASE64 = 8192;

/** Decodes standard base64 strictly (cosign writes it padded); undefined for anything else. */
export function decodeBase64(text: string): Buffer | undefined {
  if (text.length === 0 || text.length > MAX_SIGNATURE_BASE64 || text.length % 4 !== 0) return undefined;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  // Round-tripping refuses non-canonical encodings (stray bits in the last character).
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** True when `signature` (DER for ECDSA) over `data` verifies with `key`. Pure: no I/O. */
export function verifyBytes(key: TrustedKey, data: Uint8Array, signature: Uint8Array): boolean {
  const k = keyObject(key.pem);
  try {
    return cryptoVerify(hashFor(k), data, k.asymmetricKeyType === 'ec' ? { key: k, dsaEncoding: 'der' } : k, signature);
  } catch {
    return false;
  }
}

/** The first of `keys` that verifies `signature` over `data`, or undefined. */
export function findSigningKey(keys: TrustedKey[], data: Uint8Array, signature: Uint8Array): TrustedKey | undefined {
  return keys.find((k) => verifyBytes(k, data, signature));
}
