import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { KeyError, trustedKeyFromPem } from './crypto.js';
import { checkSigningKey, decryptPrivateKey, PrivateKeyError } from './keys.js';
import { parsePolicy, resolvePolicy, type RawFulcio, type TrustPolicy } from './policy-file.js';
import { rootFromPems } from './trusted-root.js';
import type { KeylessTrust, TrustedKey } from './types.js';

// Key files are small; a bigger file is not a key and is not read whole.
const MAX_KEY_FILE = 64 * 1024;

async function readSmall(path: string, what: string, max = MAX_KEY_FILE): Promise<string> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw new KeyError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (buf.length > max) throw new KeyError(`${what} ${path} is ${buf.length} bytes, larger than ${max}`);
  return buf.toString('utf8');
}

/** Reads PEM public keys (cosign's `cosign.pub`, or a certificate) from files. */
export async function readPublicKeys(paths: string[]): Promise<TrustedKey[]> {
  const out: TrustedKey[] = [];
  for (const p of paths) out.push(trustedKeyFromPem(await readSmall(p, 'public key'), p));
  return out;
}

/** Where a key's password comes from: a file, the COSIGN_PASSWORD variable, or a prompt on the terminal. */
export interface PasswordSource {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Asks on the terminal; absent (or no terminal) means the other sources must give it. */
  prompt?: (question: string) => Promise<string>;
}

/** The password, from `--password-file`, then COSIGN_PASSWORD (as cosign reads it, empty allowed), then a prompt. */
export async function readPassword(src: PasswordSource, question: string): Promise<string> {
  if (src.file) return (await readSmall(src.file, 'password file')).replace(/\r?\n$/, '');
  const env = src.env ?? process.env;
  if (env.COSIGN_PASSWORD !== undefined) return env.COSIGN_PASSWORD;
  if (src.prompt) return src.prompt(question);
  throw new PrivateKeyError('no password: set COSIGN_PASSWORD, give --password-file, or run on a terminal');
}

/** Reads and decrypts a cosign private key file for signing (ECDSA P-256 only). */
export async function readSigningKey(path: string, src: PasswordSource): Promise<KeyObject> {
  const text = await readSmall(path, 'private key');
  const password = await readPassword(src, `Enter password for private key ${path}: `);
  return checkSigningKey(await decryptPrivateKey(text, password, path), path);
}

/**
 * Reads a containers-policy.json and every key it names. Relative `keyPath`s are resolved against
 * the policy file's folder (Sluice's rule for paths in config files); `keyData` is base64 PEM.
 */
export async function loadPolicyFile(path: string): Promise<TrustPolicy> {
  const parsed = parsePolicy(await readSmall(path, 'policy file', 4 * 1024 * 1024), path);
  const base = dirname(resolve(path));
  const readText = (source: string, field: string): string => {
    const p = isAbsolute(source) ? source : resolve(base, source);
    try {
      const buf = readFileSync(p);
      if (buf.length > MAX_KEY_FILE)
        throw new KeyError(`${path}: ${field} ${source} is ${buf.length} bytes, larger than ${MAX_KEY_FILE}`);
      return buf.toString('utf8');
    } catch (e) {
      if (e instanceof KeyError) throw e;
      throw new KeyError(
        `${path}: cannot read ${field} ${source}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
  };
  const keyless = (f: RawFulcio): KeylessTrust => {
    const ca =
      f.caPath !== undefined ? readText(f.caPath, 'fulcio.caPath') : Buffer.from(f.caData!, 'base64').toString('utf8');
    const rekor = [
      ...f.rekorKeyPaths.map((k) => readText(k, 'rekorPublicKeyPath')),
      ...f.rekorKeyDatas.map((d) => Buffer.from(d, 'base64').toString('utf8')),
    ];
    const root = rootFromPems(`fulcio ${f.caPath ?? 'caData'}`, ca, rekor);
    return { roots: [root], identities: [{ issuer: f.oidcIssuer, subject: f.subjectEmail }] };
  };
  return resolvePolicy(
    parsed,
    (source, isData) =>
      isData
        ? trustedKeyFromPem(Buffer.from(source, 'base64').toString('utf8'), 'keyData')
        : trustedKeyFromPem(readText(source, 'keyPath'), source),
    keyless,
  );
}
