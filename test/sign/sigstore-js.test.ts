import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { bundleFromJSON, bundleToJSON, toDSSEBundle } from '@sigstore/bundle';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { buildBundle, buildStatement, pae } from '../../src/sign/bundle.js';
import { judgeSignature } from '../../src/sign/verify.js';
import { trustedKeyFromPem } from '../../src/sign/crypto.js';
import { VerificationCache } from '../../src/sign/cache.js';
import { digestOf } from '../../src/oci/digest.js';
import { INTOTO_PAYLOAD_TYPE, type SignatureCandidate } from '../../src/sign/types.js';

// sigstore-js (@sigstore/verify 3.1.1, @sigstore/bundle 4.0.0) is the reference JavaScript
// implementation of the bundle spec: Sluice's bundles must pass its verifier, and bundles it
// builds must pass Sluice's. Key-signed bundles carry no transparency-log entry or timestamp, as
// cosign writes them with --tlog-upload=false, so the thresholds are 0.
const EMPTY_ROOT = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
};
const digest = digestOf('the image manifest');

function sigstoreVerify(bundleJson: unknown, publicKey: ReturnType<typeof generateKeyPairSync>['publicKey']): void {
  const tm = toTrustMaterial(EMPTY_ROOT as never, () => ({ publicKey, validFor: () => true }));
  new Verifier(tm, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(
    toSignedEntity(bundleFromJSON(bundleJson)),
  );
}

test("Sluice's bundle passes @sigstore/verify with the signer's key and fails with another", () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const statement = buildStatement(digest, 'example.com/app:1');
  const sig = cryptoSign('sha256', pae(INTOTO_PAYLOAD_TYPE, statement), { key: privateKey, dsaEncoding: 'der' });
  const bundle = JSON.parse(buildBundle(statement, sig, 'hint').toString());
  sigstoreVerify(bundle, publicKey);
  const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey;
  assert.throws(() => sigstoreVerify(bundle, other), /signature verification failed/);
  // bundleToJSON(bundleFromJSON(x)) keeps every field Sluice writes: nothing non-standard.
  const round = bundleToJSON(bundleFromJSON(bundle)) as unknown as { dsseEnvelope: unknown; mediaType: string };
  assert.deepEqual(round.dsseEnvelope, bundle.dsseEnvelope);
  assert.equal(round.mediaType, bundle.mediaType);
});

test('a DSSE bundle built by @sigstore/bundle passes Sluice, and a tampered one does not', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const statement = buildStatement(digest, 'example.com/app:1');
  const signature = cryptoSign('sha256', pae(INTOTO_PAYLOAD_TYPE, statement), { key: privateKey, dsaEncoding: 'der' });
  const json = bundleToJSON(
    toDSSEBundle({ artifact: statement, artifactType: INTOTO_PAYLOAD_TYPE, signature, keyHint: 'k' }),
  );
  const bytes = Buffer.from(JSON.stringify(json));
  const key = trustedKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'k.pub');
  const req = {
    type: 'sigstoreSigned' as const,
    keys: [key],
    signedIdentity: { type: 'matchRepoDigestOrExact' as const },
  };
  const cand = (b: Buffer): SignatureCandidate => ({
    kind: 'bundle',
    where: 'referrer x',
    id: digestOf(b),
    payload: b,
  });
  const ok = judgeSignature(
    { digest, dockerReference: 'example.com/app:1' },
    cand(bytes),
    req,
    new VerificationCache(),
  );
  assert.equal(ok.accepted, true, ok.reason);
  const tampered = JSON.parse(bytes.toString());
  tampered.dsseEnvelope.payload = Buffer.from(buildStatement(digestOf('another image'), 'example.com/app:1')).toString(
    'base64',
  );
  const bad = judgeSignature(
    { digest: digestOf('another image'), dockerReference: 'example.com/app:1' },
    cand(Buffer.from(JSON.stringify(tampered))),
    req,
    new VerificationCache(),
  );
  assert.equal(bad.accepted, false);
  assert.match(bad.reason, /signed by another key/);
});

test("cosign 3's statement names no image: the signature verifies, but no identity rule accepts it", () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const statement = buildStatement(digest);
  const signature = cryptoSign('sha256', pae(INTOTO_PAYLOAD_TYPE, statement), { key: privateKey, dsaEncoding: 'der' });
  const bytes = buildBundle(statement, signature, 'k');
  const key = trustedKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'k.pub');
  const v = judgeSignature(
    { digest, dockerReference: 'example.com/app:1' },
    { kind: 'bundle', where: 'referrer x', id: digestOf(bytes), payload: bytes },
    { type: 'sigstoreSigned', keys: [key], signedIdentity: { type: 'matchRepository' } },
    new VerificationCache(),
  );
  assert.equal(v.accepted, false);
  assert.match(
    v.reason,
    /signed by k\.pub .* over this digest, but the signature names no image \(cosign 3 bundles sign only the digest\)/,
  );
});
