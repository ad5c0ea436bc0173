import { createHash, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { json } from '@sigstore/core';
import { digestOf, digestTag, type Digest } from '../../src/oci/digest.js';
import { buildPayload } from '../../src/sign/payload.js';
import { pushBlob, pushManifest } from './images.js';

// A private sigstore made in the test: a Fulcio-like CA (openssl), a Rekor-like log key, and keyless `.sig`
// signatures as cosign writes them (certificate, Rekor bundle with a signed entry timestamp). For the paths that
// need an image whose manifest we hold; the real, external keyless signatures are tested in test/sign/keyless.test.ts.

/** Who the test CA certifies: the SAN and the Fulcio claims. */
export interface TestSigner {
  subject: string;
  issuer: string;
  /** `owner/repo`, `refs/tags/v1`, `push`: written as the newer (.1.12, .1.14, .1.20) extensions. */
  github?: { repository: string; ref: string; trigger: string };
}

export const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';
export const releaseSigner = (repo: string, ref = 'refs/tags/v1.2.0'): TestSigner => ({
  subject: `https://github.com/${repo}/.github/workflows/release.yml@${ref}`,
  issuer: GITHUB_ISSUER,
  github: { repository: repo, ref, trigger: 'push' },
});

/** A test sigstore: its trusted_root.json, CA and Rekor key files, and a signer of payloads. */
export interface TestSigstore {
  rootPath: string;
  caPath: string;
  rekorKeyPath: string;
  /** The annotations cosign puts on a keyless `.sig` layer, for `payload` signed as `who`. */
  sign(payload: Buffer, who: TestSigner, opts?: { integratedTime?: number; rekorKey?: KeyObject }): Record<string, string>;
}

const openssl = (args: string[], cwd: string): string => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex');

/** Makes a CA and a log key under `dir`, and a trusted_root.json naming both (no CT log, so no SCT is needed). */
export function makeTestSigstore(dir: string): TestSigstore {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  openssl(['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/O=sluice.test/CN=test-fulcio', '-days', '30', '-out', 'ca.pem',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const rekor = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const rekorDer = rekor.publicKey.export({ type: 'spki', format: 'der' });
  writeFileSync(join(dir, 'rekor.pub'), rekor.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const caDer = Buffer.from(readFileSync(join(dir, 'ca.pem'), 'utf8').replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  const logId = createHash('sha256').update(rekorDer).digest();
  const start = '2020-01-01T00:00:00Z';
  writeFileSync(join(dir, 'trusted_root.json'), JSON.stringify({
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [{ baseUrl: 'https://rekor.sluice.test', hashAlgorithm: 'SHA2_256', publicKey: { rawBytes: rekorDer.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } }, logId: { keyId: logId.toString('base64') } }],
    certificateAuthorities: [{ subject: { organization: 'sluice.test', commonName: 'test-fulcio' }, uri: 'https://fulcio.sluice.test', certChain: { certificates: [{ rawBytes: caDer.toString('base64') }] }, validFor: { start } }],
    ctlogs: [],
    timestampAuthorities: [],
  }));
  let n = 0;
  return {
    rootPath: join(dir, 'trusted_root.json'),
    caPath: join(dir, 'ca.pem'),
    rekorKeyPath: join(dir, 'rekor.pub'),
    sign(payload, who, opts = {}) {
      const id = `leaf${++n}`;
      const leaf = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      writeFileSync(join(dir, `${id}.key`), leaf.privateKey.export({ type: 'pkcs8', format: 'pem' }));
      const san = who.subject.includes('@') && !who.subject.includes('/') ? `email:${who.subject}` : `URI:${who.subject}`;
      const ext = [
        '[ext]',
        'keyUsage = critical, digitalSignature',
        'extendedKeyUsage = codeSigning',
        `subjectAltName = critical, ${san}`,
        `1.3.6.1.4.1.57264.1.1 = DER:${hex(who.issuer)}`,
        `1.3.6.1.4.1.57264.1.8 = ASN1:UTF8String:${who.issuer}`,
      ];
      if (who.github) {
        ext.push(`1.3.6.1.4.1.57264.1.12 = ASN1:UTF8String:https://github.com/${who.github.repository}`);
        ext.push(`1.3.6.1.4.1.57264.1.14 = ASN1:UTF8String:${who.github.ref}`);
        ext.push(`1.3.6.1.4.1.57264.1.20 = ASN1:UTF8String:${who.github.trigger}`);
      }
      writeFileSync(join(dir, `${id}.ext`), `${ext.join('\n')}\n`);
      openssl(['req', '-new', '-key', `${id}.key`, '-subj', '/O=sigstore', '-out', `${id}.csr`], dir);
      openssl(['x509', '-req', '-in', `${id}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1',
        '-extfile', `${id}.ext`, '-extensions', 'ext', '-out', `${id}.pem`], dir);
      const certPem = readFileSync(join(dir, `${id}.pem`), 'utf8');
      const signature = cryptoSign('sha256', payload, { key: leaf.privateKey, dsaEncoding: 'der' }).toString('base64');
      const body = Buffer.from(JSON.stringify({
        apiVersion: '0.0.1',
        kind: 'hashedrekord',
        spec: {
          data: { hash: { algorithm: 'sha256', value: createHash('sha256').update(payload).digest('hex') } },
          signature: { content: signature, publicKey: { content: Buffer.from(certPem).toString('base64') } },
        },
      })).toString('base64');
      const entry = { body, integratedTime: opts.integratedTime ?? Math.ceil(Date.now() / 1000), logID: logId.toString('hex'), logIndex: 1000 + n };
      // Logged just after the certificate was made (openssl starts its validity now), as Fulcio then Rekor do.
      // The SET: the log's signature over the canonical JSON of the entry (RFC 8785 order), as Rekor makes it.
      const set = cryptoSign('sha256', Buffer.from(json.canonicalize(entry)), { key: opts.rekorKey ?? rekor.privateKey, dsaEncoding: 'der' });
      return {
        'dev.cosignproject.cosign/signature': signature,
        'dev.sigstore.cosign/certificate': certPem,
        'dev.sigstore.cosign/chain': readFileSync(join(dir, 'ca.pem'), 'utf8'),
        'dev.sigstore.cosign/bundle': JSON.stringify({ SignedEntryTimestamp: set.toString('base64'), Payload: entry }),
      };
    },
  };
}

/** Pushes a keyless `.sig` for `digest` into `repo` at `url`: the payload names `dockerReference`; returns the payload. */
export async function pushKeylessSignature(url: string, repo: string, digest: Digest, dockerReference: string, store: TestSigstore, who: TestSigner): Promise<Buffer> {
  const payload = buildPayload(dockerReference, digest);
  const annotations = store.sign(payload, who);
  const config = Buffer.from(JSON.stringify({ architecture: '', os: '', config: {}, rootfs: { type: 'layers', diff_ids: [digestOf(payload)] } }));
  await pushBlob(url, repo, config);
  await pushBlob(url, repo, payload);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: config.length, digest: digestOf(config) },
    layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', size: payload.length, digest: digestOf(payload), annotations }],
  }));
  const r = await pushManifest(url, repo, `${digestTag(digest)}.sig`, manifest, 'application/vnd.oci.image.manifest.v1+json');
  if (r.status !== 201) throw new Error(`signature push failed: ${r.status} ${await r.text()}`);
  return payload;
}
