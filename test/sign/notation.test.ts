import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { digestOf, type Digest } from '../../src/oci/digest.js';
import { VerificationCache } from '../../src/sign/cache.js';
import { decodeCbor, CborError } from '../../src/sign/cbor.js';
import { COSE_MEDIA_TYPE, JWS_MEDIA_TYPE, verifyNotation, type NotationStore } from '../../src/sign/notation.js';
import { notationPolicyFor, parseNotationPolicy } from '../../src/sign/notation-policy.js';
import { evaluateRequirements } from '../../src/sign/verify.js';
import type { SignatureCandidate } from '../../src/sign/types.js';

// Notary Project envelopes that notation made (notaryproject/notation-go internal/testdata: a JWS and a COSE
// signature of the manifest in its oci-layout), verified here; origins in test/sign/fixtures/README.md.
const FIX = fileURLToPath(new URL('../../../test/sign/fixtures/notation/', import.meta.url));
const JWS = readFileSync(FIX + 'jws_signature.sig');
const COSE = readFileSync(FIX + 'cose_signature.sig');
const MANIFEST = readFileSync(
  FIX + 'oci-layout/blobs/sha256/19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0',
);
const DIGEST = digestOf(MANIFEST);
const NOW = Date.parse('2026-12-07T00:00:00Z');

// The signer's own certificate (self-signed "alpine", from the JWS's x5c) as the trust store, as `notation cert add` would.
const leaf = new X509Certificate(
  Buffer.from((JSON.parse(JWS.toString()) as { header: { x5c: string[] } }).header.x5c[0]!, 'base64'),
);
const alpine: NotationStore = { name: 'ca:alpine', type: 'ca', certs: [leaf] };
const wabbit: NotationStore = {
  name: 'ca:wabbit-networks',
  type: 'ca',
  certs: [new X509Certificate(readFileSync(FIX + 'wabbit-networks.io.crt'))],
};

const cand = (bytes: Buffer, mediaType: string): SignatureCandidate => ({
  kind: 'notation',
  where: `referrer (${mediaType})`,
  id: digestOf(bytes),
  payload: bytes,
  mediaType,
});

test('notation JWS and COSE envelopes verify against a trust store holding their certificate', () => {
  for (const [bytes, mt] of [
    [JWS, JWS_MEDIA_TYPE],
    [COSE, COSE_MEDIA_TYPE],
  ] as const) {
    const v = verifyNotation(bytes, mt, [alpine], NOW);
    assert.equal(v.signed, true, JSON.stringify(v));
    assert.ok(v.signed);
    assert.equal(v.targetDigest, DIGEST);
    assert.equal(v.subject, 'C=US, ST=WA, L=Seattle, O=Notary, CN=alpine');
  }
});

test('notation refusals: another trust store, a tampered envelope, a time past the certificate, a signing-authority store', () => {
  for (const [bytes, mt] of [
    [JWS, JWS_MEDIA_TYPE],
    [COSE, COSE_MEDIA_TYPE],
  ] as const) {
    const other = verifyNotation(bytes, mt, [wabbit], NOW);
    assert.equal(other.signed, false);
    assert.match(!other.signed ? other.reason : '', /does not end at a certificate of trust store ca:wabbit-networks/);
    const late = verifyNotation(bytes, mt, [alpine], Date.parse('2124-01-01T00:00:00Z'));
    assert.match(!late.signed ? late.reason : '', /is not valid now/);
    const sa = verifyNotation(
      bytes,
      mt,
      [{ ...alpine, name: 'signingAuthority:alpine', type: 'signingAuthority' }],
      NOW,
    );
    assert.match(!sa.signed ? sa.reason : '', /needs a ca trust store/);
  }
  const doc = JSON.parse(JWS.toString());
  doc.payload = Buffer.from(
    JSON.stringify({
      targetArtifact: { digest: digestOf('x'), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1 },
    }),
  ).toString('base64url');
  const forged = verifyNotation(Buffer.from(JSON.stringify(doc)), JWS_MEDIA_TYPE, [alpine], NOW);
  assert.match(!forged.signed ? forged.reason : '', /PS256 signature does not verify/);
  const cose = Buffer.from(COSE);
  cose[cose.length - 5]! ^= 1;
  assert.equal(verifyNotation(cose, COSE_MEDIA_TYPE, [alpine], NOW).signed, false);
});

test('notation requirement: the digest binds and the trusted identities choose the signer', () => {
  const judge = (digest: Digest, identities: string[]) =>
    evaluateRequirements(
      { digest },
      [cand(JWS, JWS_MEDIA_TYPE), cand(COSE, COSE_MEDIA_TYPE)],
      [{ type: 'notationSigned', stores: [alpine], identities }],
      { cache: new VerificationCache(), now: NOW },
    );
  assert.equal(judge(DIGEST, ['*']).allowed, true);
  assert.equal(judge(DIGEST, ['x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=alpine']).allowed, true);
  assert.equal(judge(DIGEST, ['x509.subject: O=Notary, CN=alpine']).allowed, true);
  const who = judge(DIGEST, ['x509.subject: C=US, O=Wabbit Networks, CN=release']);
  assert.equal(who.allowed, false);
  assert.match(
    who.summary,
    /signed by C=US, ST=WA, L=Seattle, O=Notary, CN=alpine \(trust store ca:alpine\), but the rule trusts only x509\.subject: C=US, O=Wabbit Networks, CN=release/,
  );
  const other = judge(digestOf('another manifest'), ['*']);
  assert.equal(other.allowed, false);
  assert.match(other.summary, /over another digest/);
});

test("notation's trustpolicy.json is read as written: scopes, levels, stores; malformed ones are refused", () => {
  const policies = parseNotationPolicy(
    JSON.stringify({
      version: '1.0',
      trustPolicies: [
        {
          name: 'alpine',
          registryScopes: ['registry.example/library/alpine'],
          signatureVerification: { level: 'strict' },
          trustStores: ['ca:alpine'],
          trustedIdentities: ['*'],
        },
        { name: 'rest', registryScopes: ['*'], signatureVerification: { level: 'skip' } },
      ],
    }),
  );
  assert.equal(notationPolicyFor(policies, 'registry.example/library/alpine')?.name, 'alpine');
  assert.equal(notationPolicyFor(policies, 'registry.example/other')?.name, 'rest');
  assert.throws(
    () =>
      parseNotationPolicy(
        '{"version":"1.0","trustPolicies":[{"name":"a","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":[],"trustedIdentities":["*"]}]}',
      ),
    /needs trustStores/,
  );
  assert.throws(
    () => parseNotationPolicy('{"version":"1.0","trustPolicies":[{"name":"a","registryScope":["*"]}]}'),
    /unknown field "registryScope"/,
  );
  assert.throws(() => parseNotationPolicy('{"version":"2.0","trustPolicies":[]}'), /version/);
});

test('the CBOR decoder refuses indefinite lengths, truncation, trailing bytes and deep nesting', () => {
  assert.throws(() => decodeCbor(Buffer.from([0x9f, 0x01, 0xff])), CborError);
  assert.throws(() => decodeCbor(Buffer.from([0x5a, 0xff, 0xff, 0xff, 0xff])), /length beyond the input/);
  assert.throws(() => decodeCbor(Buffer.from([0x01, 0x01])), /trailing/);
  assert.throws(() => decodeCbor(Buffer.alloc(40, 0x81)), /nested too deeply|truncated/);
  assert.deepEqual(decodeCbor(Buffer.from([0x83, 0x01, 0x20, 0x61, 0x61])), [1, -1, 'a']);
});
