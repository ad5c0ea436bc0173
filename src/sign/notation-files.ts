import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { NotationStore } from './notation.js';
import { parseNotationPolicy, type NotationPolicyEntry } from './notation-policy.js';

// The I/O half of notation: trust store folders and trustpolicy.json, read once and bounded.

const MAX_CERT_FILE = 256 * 1024;
const MAX_CERT_FILES = 64;

/** Reads a trust store folder (notation's `truststore/x509/<type>/<name>/`): PEM or DER certificates. */
export function readTrustStore(dir: string, name: string): NotationStore {
  const m = /^(ca|signingAuthority|tsa):(.+)$/.exec(name);
  if (!m) throw new Error(`trust store name "${name}" is not <ca|signingAuthority|tsa>:<name>`);
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => statSync(join(dir, f)).isFile())
      .sort();
  } catch (e) {
    throw new Error(
      `trust store ${name}: cannot read ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  if (files.length > MAX_CERT_FILES)
    throw new Error(`trust store ${name}: ${files.length} files in ${dir}, more than ${MAX_CERT_FILES}`);
  const certs: X509Certificate[] = [];
  for (const f of files) {
    const buf = readFileSync(join(dir, f));
    if (buf.length > MAX_CERT_FILE)
      throw new Error(`trust store ${name}: ${f} is ${buf.length} bytes, larger than ${MAX_CERT_FILE}`);
    const text = buf.toString('latin1');
    const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
    try {
      if (pems) for (const p of pems) certs.push(new X509Certificate(p));
      else certs.push(new X509Certificate(buf));
    } catch (e) {
      throw new Error(`trust store ${name}: ${f} is not a certificate: ${(e as Error).message}`);
    }
  }
  if (certs.length === 0) throw new Error(`trust store ${name}: no certificates in ${dir}`);
  return { name, type: m[1] as NotationStore['type'], certs };
}

/** A trustpolicy.json with its trust stores read from notation's layout under `truststoreRoot` (`x509/<type>/<name>`). */
export interface NotationPolicyFile {
  file: string;
  policies: NotationPolicyEntry[];
  stores: Map<string, NotationStore>;
}

/** Reads notation's trustpolicy.json and every trust store it names. */
export function loadNotationPolicy(file: string, truststoreRoot: string): NotationPolicyFile {
  let text: string;
  try {
    const buf = readFileSync(file);
    if (buf.length > 1024 * 1024) throw new Error(`${buf.length} bytes, larger than 1 MiB`);
    text = buf.toString('utf8');
  } catch (e) {
    throw new Error(`cannot read trust policy ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const policies = parseNotationPolicy(text, file);
  const stores = new Map<string, NotationStore>();
  for (const p of policies) {
    for (const s of p.trustStores) {
      if (stores.has(s)) continue;
      const [type, name] = s.split(':') as [string, string];
      stores.set(s, readTrustStore(join(truststoreRoot, 'x509', type, name), s));
    }
  }
  return { file, policies, stores };
}
