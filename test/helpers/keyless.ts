import { createHash, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { json } from '@sigstore/core';
import { digestOf, digestTag, type Digest } from '../../src/oci/digest.js';
import { buildPayload } from '../../src/sign/payload.js';
import { buildStatement, pae } from '../../src/sign/bundle.js';
import { INTOTO_PAYLOAD_TYPE } from '../../src/sign/types.js';
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
  sign(payload: Buffer, who: TestSigner, opts?: SignOptions): Record<string, string>;
  /** A sigstore bundle (v0.3 unless `opts.version`) of `statement` in DSSE, signed as `who`, logged with a SET and an inclusion proof. */
  signBundle(statement: Buffer, who: TestSigner, opts?: SignOptions): Buffer;
}

export type BundleVersion = '0.1' | '0.2' | '0.3';

/** When the log records the entry, which key signs for the log, and (for bundles) the bundle version. */
export interface SignOptions {
  integratedTime?: number;
  rekorKey?: KeyObject;
  version?: BundleVersion;
}

const openssl = (args: string[], cwd: string): string =>
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex');

/** Makes a CA and a log key under `dir`, and a trusted_root.json naming both (no CT log, so no SCT is needed). */
export function makeTestSigstore(dir: string): TestSigstore {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-subj',
      '/O=sluice.test/CN=test-fulcio',
      '-days',
      '30',
      '-out',
      'ca.pem',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  const rekor = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const rekorDer = rekor.publicKey.export({ type: 'spki', format: 'der' });
  writeFileSync(join(dir, 'rekor.pub'), rekor.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const caDer = Buffer.from(readFileSync(join(dir, 'ca.pem'), 'utf8').replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  const logId = createHash('sha256').update(rekorDer).digest();
  const start = '2020-01-01T00:00:00Z';
  writeFileSync(
    join(dir, 'trusted_root.json'),
    JSON.stringify({
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [
        {
          baseUrl: 'https://rekor.sluice.test',
          hashAlgorithm: 'SHA2_256',
          publicKey: {
            rawBytes: rekorDer.toString('base64'),
            keyDetails: 'PKIX_ECDSA_P256_SHA_256',
            validFor: { start },
          },
          logId: { keyId: logId.toString('base64') },
        },
      ],
      certificateAuthorities: [
        {
          subject: { organization: 'sluice.test', commonName: 'test-fulcio' },
          uri: 'https://fulcio.sluice.test',
          certChain: { certificates: [{ rawBytes: caDer.toString('base64') }] },
          validFor: { start },
        },
      ],
      ctlogs: [],
      timestampAuthorities: [],
    }),
  );
  let n = 0;
  // A leaf certificate for `who` from the test CA, valid one day from now, with its private key.
  const certify = (who: TestSigner): { certPem: string; key: KeyObject } => {
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
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${id}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
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
    return { certPem: readFileSync(join(dir, `${id}.pem`), 'utf8'), key: leaf.privateKey };
  };
  // A log entry for `body` (a Rekor entry, JSON) logged just after the certificate was made (openssl starts its
  // validity now), as Fulcio then Rekor do; the SET is the log's signature over the canonical JSON of the entry
  // (RFC 8785 order), as Rekor makes it.
  const logEntry = (body: unknown, opts: SignOptions) => {
    const entry = {
      body: Buffer.from(JSON.stringify(body)).toString('base64'),
      integratedTime: opts.integratedTime ?? Math.ceil(Date.now() / 1000),
      logID: logId.toString('hex'),
      logIndex: 1000 + n,
    };
    const set = cryptoSign('sha256', Buffer.from(json.canonicalize(entry)), {
      key: opts.rekorKey ?? rekor.privateKey,
      dsaEncoding: 'der',
    });
    return { entry, set: set.toString('base64') };
  };
  return {
    rootPath: join(dir, 'trusted_root.json'),
    caPath: join(dir, 'ca.pem'),
    rekorKeyPath: join(dir, 'rekor.pub'),
    sign(payload, who, opts = {}) {
      const { certPem, key } = certify(who);
      const signature = cryptoSign('sha256', payload, { key, dsaEncoding: 'der' }).toString('base64');
      const { entry, set } = logEntry(
        {
          apiVersion: '0.0.1',
          kind: 'hashedrekord',
          spec: {
            data: { hash: { algorithm: 'sha256', value: createHash('sha256').update(payload).digest('hex') } },
            signature: { content: signature, publicKey: { content: Buffer.from(certPem).toString('base64') } },
          },
        },
        opts,
      );
      return {
        'dev.cosignproject.cosign/signature': signature,
        'dev.sigstore.cosign/certificate': certPem,
        'dev.sigstore.cosign/chain': readFileSync(join(dir, 'ca.pem'), 'utf8'),
        'dev.sigstore.cosign/bundle': JSON.stringify({ SignedEntryTimestamp: set, Payload: entry }),
      };
    },
    signBundle(statement, who, opts = {}) {
      const { certPem, key } = certify(who);
      const sig = cryptoSign('sha256', pae(INTOTO_PAYLOAD_TYPE, statement), { key, dsaEncoding: 'der' });
      const certDer = Buffer.from(certPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
      const envelope = {
        payload: statement.toString('base64'),
        payloadType: INTOTO_PAYLOAD_TYPE,
        signatures: [{ sig: sig.toString('base64'), keyid: '' }],
      };
      // Rekor's `dsse` 0.0.1 entry: the signature with its verifier, and the hashes of payload and envelope.
      const { entry, set } = logEntry(
        {
          apiVersion: '0.0.1',
          kind: 'dsse',
          spec: {
            envelopeHash: {
              algorithm: 'sha256',
              value: createHash('sha256').update(JSON.stringify(envelope)).digest('hex'),
            },
            payloadHash: { algorithm: 'sha256', value: createHash('sha256').update(statement).digest('hex') },
            signatures: [{ signature: sig.toString('base64'), verifier: Buffer.from(certPem).toString('base64') }],
          },
        },
        opts,
      );
      // A log of one entry: the root is the leaf hash, and the checkpoint (a signed note) vouches for it.
      const root = createHash('sha256')
        .update(Buffer.concat([Buffer.from([0]), Buffer.from(entry.body, 'base64')]))
        .digest();
      const note = `rekor.sluice.test - 1\n1\n${root.toString('base64')}\n`;
      const noteSig = cryptoSign('sha256', Buffer.from(note), {
        key: opts.rekorKey ?? rekor.privateKey,
        dsaEncoding: 'der',
      });
      const checkpoint = `${note}\n\u2014 rekor.sluice.test ${Buffer.concat([logId.subarray(0, 4), noteSig]).toString('base64')}\n`;
      const version = opts.version ?? '0.3';
      const v03 = version === '0.3';
      return Buffer.from(
        JSON.stringify({
          mediaType: bundleMediaType(version),
          verificationMaterial: {
            ...(v03
              ? { certificate: { rawBytes: certDer.toString('base64') } }
              : { x509CertificateChain: { certificates: [{ rawBytes: certDer.toString('base64') }] } }),
            tlogEntries: [
              {
                logIndex: String(entry.logIndex),
                logId: { keyId: logId.toString('base64') },
                kindVersion: { kind: 'dsse', version: '0.0.1' },
                integratedTime: String(entry.integratedTime),
                inclusionPromise: { signedEntryTimestamp: set },
                inclusionProof: {
                  logIndex: '0',
                  rootHash: root.toString('base64'),
                  treeSize: '1',
                  hashes: [],
                  checkpoint: { envelope: checkpoint },
                },
                canonicalizedBody: entry.body,
              },
            ],
            timestampVerificationData: {},
          },
          dsseEnvelope: envelope,
        }),
      );
    },
  };
}

/** The media type of a sigstore bundle of `version`: v0.1 and v0.2 carry it as a parameter, v0.3 in the name. */
export const bundleMediaType = (version: BundleVersion): string =>
  version === '0.3'
    ? 'application/vnd.dev.sigstore.bundle.v0.3+json'
    : `application/vnd.dev.sigstore.bundle+json;version=${version}`;

/**
 * Pushes a keyless sigstore bundle for `subject` into `repo` at `url` as an OCI 1.1 referrer, as cosign 3 attaches
 * it (empty config, the bundle as the one layer, artifactType the bundle's media type); the statement names
 * `dockerReference`. Returns the referrer manifest's digest.
 */
export async function pushKeylessBundle(
  url: string,
  repo: string,
  subject: { digest: Digest; mediaType: string; size: number },
  dockerReference: string,
  store: TestSigstore,
  who: TestSigner,
  opts: SignOptions = {},
): Promise<Digest> {
  const bundle = store.signBundle(buildStatement(subject.digest, dockerReference), who, opts);
  const mediaType = bundleMediaType(opts.version ?? '0.3');
  const empty = Buffer.from('{}');
  await pushBlob(url, repo, empty);
  await pushBlob(url, repo, bundle);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: mediaType,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', size: empty.length, digest: digestOf(empty) },
      layers: [{ mediaType, size: bundle.length, digest: digestOf(bundle) }],
      subject,
      annotations: {
        'dev.sigstore.bundle.content': 'dsse-envelope',
        'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1',
      },
    }),
  );
  const digest = digestOf(manifest);
  const r = await pushManifest(url, repo, digest, manifest, 'application/vnd.oci.image.manifest.v1+json');
  if (r.status !== 201) throw new Error(`bundle referrer push failed: ${r.status} ${await r.text()}`);
  return digest;
}

/** Pushes a keyless `.sig` for `digest` into `repo` at `url`: the payload names `dockerReference`; returns the payload. */
export async function pushKeylessSignature(
  url: string,
  repo: string,
  digest: Digest,
  dockerReference: string,
  store: TestSigstore,
  who: TestSigner,
): Promise<Buffer> {
  const payload = buildPayload(dockerReference, digest);
  const annotations = store.sign(payload, who);
  const config = Buffer.from(
    JSON.stringify({ architecture: '', os: '', config: {}, rootfs: { type: 'layers', diff_ids: [digestOf(payload)] } }),
  );
  await pushBlob(url, repo, config);
  await pushBlob(url, repo, payload);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: config.length, digest: digestOf(config) },
      layers: [
        {
          mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
          size: payload.length,
          digest: digestOf(payload),
          annotations,
        },
      ],
    }),
  );
  const r = await pushManifest(
    url,
    repo,
    `${digestTag(digest)}.sig`,
    manifest,
    'application/vnd.oci.image.manifest.v1+json',
  );
  if (r.status !== 201) throw new Error(`signature push failed: ${r.status} ${await r.text()}`);
  return payload;
}
