import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign as cryptoSign, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NotationStore } from '../../src/sign/notation.js';

// Notation JWS envelopes made in the test with a CA of our own (openssl), for what no published envelope shows:
// an expiry in the past, certificates that name a CRL or an OCSP responder, the signingAuthority scheme. The
// envelope is notation's (notary.x509, ES256, cty application/vnd.cncf.notary.payload.v1+json, x5c leaf first).

/** What the test leaf certificate carries, and how the envelope is signed. */
export interface NotationSignOptions {
  /** Unix ms of `io.cncf.notary.expiry`. */
  expiry?: number;
  /** A CRL distribution point and/or an OCSP responder in the leaf. */
  crl?: boolean;
  ocsp?: boolean;
  scheme?: 'notary.x509' | 'notary.x509.signingAuthority';
  /** Unix ms of `io.cncf.notary.authenticSigningTime`. */
  signingTime?: number;
}

/** A test CA as a notation trust store, and a signer of envelopes over a digest. */
export interface TestNotation {
  store(name: string): NotationStore;
  sign(digest: string, opts?: NotationSignOptions): Buffer;
}

const openssl = (args: string[], cwd: string): void => {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
};
const der = (pem: string): string => pem.replace(/-----[A-Z ]+-----|\s/g, '');

/** Makes a CA under `dir`; each envelope gets a new leaf (`C=US, ST=WA, O=Acme, CN=release`) issued by it. */
export function makeTestNotation(dir: string): TestNotation {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'nca.key'], dir);
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'nca.key',
      '-subj',
      '/C=US/ST=WA/O=Acme/CN=Acme Root',
      '-days',
      '30',
      '-out',
      'nca.pem',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  const caPem = readFileSync(join(dir, 'nca.pem'), 'utf8');
  let n = 0;
  return {
    store: (name) => ({
      name,
      type: name.startsWith('signingAuthority:') ? 'signingAuthority' : 'ca',
      certs: [new X509Certificate(caPem)],
    }),
    sign(digest, opts = {}) {
      const id = `nleaf${++n}`;
      const leaf = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      writeFileSync(join(dir, `${id}.key`), leaf.privateKey.export({ type: 'pkcs8', format: 'pem' }));
      const ext = ['[ext]', 'keyUsage = critical, digitalSignature', 'extendedKeyUsage = codeSigning'];
      if (opts.crl) ext.push('crlDistributionPoints = URI:http://127.0.0.1:9/acme.crl');
      if (opts.ocsp) ext.push('authorityInfoAccess = OCSP;URI:http://127.0.0.1:9/ocsp');
      writeFileSync(join(dir, `${id}.ext`), `${ext.join('\n')}\n`);
      openssl(['req', '-new', '-key', `${id}.key`, '-subj', '/C=US/ST=WA/O=Acme/CN=release', '-out', `${id}.csr`], dir);
      openssl(
        [
          'x509',
          '-req',
          '-in',
          `${id}.csr`,
          '-CA',
          'nca.pem',
          '-CAkey',
          'nca.key',
          '-CAcreateserial',
          '-days',
          '1',
          '-extfile',
          `${id}.ext`,
          '-extensions',
          'ext',
          '-out',
          `${id}.pem`,
        ],
        dir,
      );
      const leafPem = readFileSync(join(dir, `${id}.pem`), 'utf8');
      const scheme = opts.scheme ?? 'notary.x509';
      const header: Record<string, unknown> = {
        alg: 'ES256',
        cty: 'application/vnd.cncf.notary.payload.v1+json',
        crit: ['io.cncf.notary.signingScheme'],
        'io.cncf.notary.signingScheme': scheme,
        'io.cncf.notary.signingTime': new Date().toISOString(),
      };
      if (opts.expiry !== undefined) {
        header['io.cncf.notary.expiry'] = new Date(opts.expiry).toISOString();
        (header.crit as string[]).push('io.cncf.notary.expiry');
      }
      if (opts.signingTime !== undefined) {
        header['io.cncf.notary.authenticSigningTime'] = new Date(opts.signingTime).toISOString();
        (header.crit as string[]).push('io.cncf.notary.authenticSigningTime');
      }
      const prot = Buffer.from(JSON.stringify(header)).toString('base64url');
      const payload = Buffer.from(
        JSON.stringify({
          targetArtifact: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 1 },
        }),
      ).toString('base64url');
      const sig = cryptoSign('sha256', Buffer.from(`${prot}.${payload}`), {
        key: leaf.privateKey,
        dsaEncoding: 'ieee-p1363',
      });
      return Buffer.from(
        JSON.stringify({
          payload,
          protected: prot,
          header: { x5c: [der(leafPem), der(caPem)], 'io.cncf.notary.signingAgent': 'sluice-test' },
          signature: sig.toString('base64url'),
        }),
      );
    },
  };
}
