import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseBundle } from '../../src/sign/bundle.js';
import { trustedKeyFromPem, verifyBytes } from '../../src/sign/crypto.js';
import { judgeSignature } from '../../src/sign/verify.js';
import { VerificationCache } from '../../src/sign/cache.js';
import { digestOf, type Digest } from '../../src/oci/digest.js';
import type { SignatureCandidate, TrustRequirement } from '../../src/sign/types.js';

// Sigstore bundles made by sigstore's own tools (origins in test/sign/fixtures/README.md).
const FIX = fileURLToPath(new URL('../../../test/sign/fixtures/', import.meta.url));
const cosignBundle = readFileSync(FIX + 'cosign_oci-attestation.sigstore.json');
const doc = JSON.parse(cosignBundle.toString('utf8')) as {
  verificationMaterial: { certificate: { rawBytes: string } };
  dsseEnvelope: { payload: string };
};
// The signer's key travels in a Fulcio certificate; Sluice uses it as a plain key (no chain or Rekor check).
const certPem = `-----BEGIN CERTIFICATE-----\n${doc.verificationMaterial.certificate.rawBytes.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
const signer = trustedKeyFromPem(certPem, 'cosign test signer');
const SUBJECT = 'sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4' as Digest;

function candidate(bytes: Buffer): SignatureCandidate {
  return { kind: 'bundle', where: 'referrer sha256:x', id: digestOf(bytes), payload: bytes };
}
function req(keys = [signer]): Extract<TrustRequirement, { type: 'sigstoreSigned' }> {
  return { type: 'sigstoreSigned', keys, signedIdentity: { type: 'matchRepository' } };
}
const image = { digest: SUBJECT, dockerReference: '127.0.0.1:60943/repo:latest' };

test("cosign's v0.3 bundle: Sluice's DSSE reading (PAE, base64, DER ECDSA) verifies cosign's signature with the signer's key", () => {
  const b = parseBundle(cosignBundle);
  assert.equal(b.signatures.length, 1);
  assert.equal(verifyBytes(signer, b.signed, b.signatures[0]!), true);
  assert.match(
    b.payload.toString('utf8'),
    /"subject":\[\{"name":"127\.0\.0\.1:60943\/repo","digest":\{"sha256":"732112/,
  );
  // One byte of the statement changed: the same signature no longer verifies.
  const tampered = Buffer.from(b.payload.toString('utf8').replace('732112', '732113'));
  assert.equal(
    verifyBytes(
      signer,
      parseBundle(
        Buffer.from(cosignBundle.toString('utf8').replace(doc.dsseEnvelope.payload, tampered.toString('base64'))),
      ).signed,
      b.signatures[0]!,
    ),
    false,
  );
});

test("cosign's bundle is an attestation, so it is refused as an image signature with that reason; another key or a tampered statement is 'another key'", () => {
  const v = judgeSignature(image, candidate(cosignBundle), req(), new VerificationCache());
  assert.equal(v.accepted, false);
  assert.match(
    v.reason,
    /^signed by cosign test signer \(SHA256:[^)]+\), but its payload is not an image signature: an attestation of type "https:\/\/cosign\.sigstore\.dev\/attestation\/v1"/,
  );
  const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    .publicKey.export({ type: 'spki', format: 'pem' })
    .toString();
  const byOther = judgeSignature(
    image,
    candidate(cosignBundle),
    req([trustedKeyFromPem(other, 'other')]),
    new VerificationCache(),
  );
  assert.match(byOther.reason, /^signed by another key, not other/);
  const swapped = Buffer.from(
    cosignBundle
      .toString('utf8')
      .replace(
        doc.dsseEnvelope.payload,
        Buffer.from(
          Buffer.from(doc.dsseEnvelope.payload, 'base64').toString('utf8').replace('attestation/v1', 'sign/v1'),
        ).toString('base64'),
      ),
  );
  assert.match(
    judgeSignature(image, candidate(swapped), req(), new VerificationCache()).reason,
    /^signed by another key/,
  );
});

test("sigstore-go's plain-key v0.3 bundle signs a blob (messageSignature): read, and refused as no image signature", () => {
  const blob = readFileSync(FIX + 'sigstore-go_public-key-validity.sigstore.json');
  assert.throws(() => parseBundle(blob), /a message-signature bundle signs a blob, not an image/);
  const v = judgeSignature(image, candidate(blob), req(), new VerificationCache());
  assert.equal(v.accepted, false);
  assert.equal(v.reason, 'unreadable bundle: a message-signature bundle signs a blob, not an image');
});
