import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createPublicKey, sign as cryptoSign } from 'node:crypto';
import { trustedKeyFromPem, keyFingerprint } from '../../src/sign/crypto.js';
import { decryptPrivateKey, publicPemOf } from '../../src/sign/keys.js';
import { judgeSignature } from '../../src/sign/verify.js';
import { VerificationCache } from '../../src/sign/cache.js';
import { digestOf, type Digest } from '../../src/oci/digest.js';
import type { IdentityRule, SignatureCandidate, TrustRequirement } from '../../src/sign/types.js';

// Verification against material cosign produced (see test/sign/fixtures/README.md for sources).
const FIX = fileURLToPath(new URL('../../../test/sign/fixtures/', import.meta.url));
const fixture = (name: string): string => readFileSync(FIX + name, 'utf8');

interface Published {
  keys: Record<string, string>;
  signatures: { name: string; key: string; image: string; payload: string; signature: string }[];
}
const stackrox = JSON.parse(fixture('stackrox-cosign-signatures.json')) as Published;
const keys = Object.fromEntries(Object.entries(stackrox.keys).map(([n, pem]) => [n, trustedKeyFromPem(pem, n)]));
const sig = (name: string) => stackrox.signatures.find((s) => s.name === name)!;

function candidate(payload: Buffer, signature: string, where = 'tag sha256-x.sig'): SignatureCandidate {
  return { kind: 'simple-signing', where, id: digestOf(`${digestOf(payload)}\n${signature}`), payload, signature };
}
function fromFixture(name: string): SignatureCandidate {
  const s = sig(name);
  return candidate(Buffer.from(s.payload, 'base64'), s.signature);
}
function req(
  keyNames: string[],
  signedIdentity: IdentityRule = { type: 'matchRepoDigestOrExact' },
): Extract<TrustRequirement, { type: 'sigstoreSigned' }> {
  return { type: 'sigstoreSigned', keys: keyNames.map((n) => keys[n]!), signedIdentity };
}
const imageOf = (ref: string) => ({ digest: ref.slice(ref.indexOf('@') + 1) as Digest, dockerReference: ref });

test('cosign signatures published by stackrox verify with matchRepository, as containers-policy.json advises for cosign', () => {
  for (const name of ['1a', '1b']) {
    const v = judgeSignature(
      imageOf(sig(name).image),
      fromFixture(name),
      req(['stackrox-1'], { type: 'matchRepository' }),
      new VerificationCache(),
    );
    assert.equal(v.accepted, true, v.reason);
    assert.match(v.reason, /stackrox-1/);
  }
  const v2 = judgeSignature(
    imageOf(sig('2').image),
    fromFixture('2'),
    req(['stackrox-1', 'stackrox-2'], { type: 'matchRepository' }),
    new VerificationCache(),
  );
  assert.equal(v2.accepted, true, v2.reason);
  assert.match(v2.reason, /stackrox-2/);
});

test('a cosign signature names only a repository, so the default matchRepoDigestOrExact refuses it for a tagged name and says what would accept it', () => {
  const s = sig('1a');
  const tagged = { digest: s.image.split('@')[1] as Digest, dockerReference: `${s.image.split('@')[0]}:latest` };
  const v = judgeSignature(tagged, fromFixture('1a'), req(['stackrox-1']), new VerificationCache());
  assert.equal(v.accepted, false);
  assert.match(v.reason, /neither tag nor digest/);
  assert.match(v.reason, /matchRepository/);
});

test('a published signature by another key is refused as signed by another key', () => {
  const v = judgeSignature(
    imageOf(sig('2').image),
    fromFixture('2'),
    req(['stackrox-1'], { type: 'matchRepository' }),
    new VerificationCache(),
  );
  assert.equal(v.accepted, false);
  assert.match(v.reason, /signed by another key, not stackrox-1/);
});

test('the same digest signed for one repository does not vouch for another (1a presented for 1b)', () => {
  const v = judgeSignature(
    imageOf(sig('1b').image),
    fromFixture('1a'),
    req(['stackrox-1'], { type: 'matchRepository' }),
    new VerificationCache(),
  );
  assert.equal(v.accepted, false);
  assert.match(
    v.reason,
    /signed for ttl\.sh\/2fd430e3-6589-4a5c-865b-4c0aa5b8b041, this is ttl\.sh\/ac711a05-fa62-40fc-8d3f-ea3bc1997a64/,
  );
});

test("Red Hat's RSA-4096 cosign signature verifies by digest with the default rule, and not under a docker.io name", () => {
  const ocp = sig('ocp');
  const ok = judgeSignature(imageOf(ocp.image), fromFixture('ocp'), req(['redhat-release']), new VerificationCache());
  assert.equal(ok.accepted, true, ok.reason);
  const fake = ocp.image.replace('quay.io', 'docker.io');
  const bad = judgeSignature(imageOf(fake), fromFixture('ocp'), req(['redhat-release']), new VerificationCache());
  assert.equal(bad.accepted, false);
  assert.match(
    bad.reason,
    /signed for quay\.io\/openshift-release-dev\/ocp-v4\.0-art-dev@sha256:c896.*this is docker\.io\/openshift-release-dev/,
  );
});

test('a published payload with one changed byte no longer verifies', () => {
  const s = sig('1a');
  const payload = Buffer.from(s.payload, 'base64');
  payload[payload.indexOf('2fd430e3')] = '3'.charCodeAt(0);
  const v = judgeSignature(
    imageOf(s.image.replace('2fd430e3', '3fd430e3')),
    candidate(payload, s.signature),
    req(['stackrox-1'], { type: 'matchRepository' }),
    new VerificationCache(),
  );
  assert.equal(v.accepted, false);
  assert.match(v.reason, /signed by another key/);
});

test("containers/image's cosign.pub signatures over non-payloads verify cryptographically but are refused as payloads", () => {
  const key = trustedKeyFromPem(fixture('containers-image_cosign.pub'), 'containers-image cosign.pub');
  const r: Extract<TrustRequirement, { type: 'sigstoreSigned' }> = {
    type: 'sigstoreSigned',
    keys: [key],
    signedIdentity: { type: 'matchRepository' },
  };
  const image = { digest: digestOf('x'), dockerReference: 'example.com/a:1' };
  const amp = judgeSignature(
    image,
    candidate(
      Buffer.from('&'),
      'MEUCIARnnxZQPALBfqkB4aNAYXad79Qs6VehcrgIeZ8p7I2FAiEAzq2HXwXlz1iJeh+ucUR3L0zpjynQk6Rk0+/gXYp49RU=',
    ),
    r,
    new VerificationCache(),
  );
  assert.equal(amp.accepted, false);
  assert.match(
    amp.reason,
    /signed by containers-image cosign\.pub .*payload is not an image signature: payload is not JSON/,
  );
  const obj = judgeSignature(
    image,
    candidate(
      Buffer.from('{}'),
      'MEUCIQDkySOBGxastVP0+koTA33NH5hXjwosFau4rxTPN6g48QIgb7eWKkGqfEpHMM3aT4xiqyP/170jEkdFuciuwN4mux4=',
    ),
    r,
    new VerificationCache(),
  );
  assert.equal(obj.accepted, false);
  assert.match(obj.reason, /payload lacks "critical"/);
  // The same signature with a stray padding character is refused before any crypto (containers/image does too).
  const pad = judgeSignature(
    image,
    candidate(
      Buffer.from('&'),
      'MEUCIARnnxZQPALBfqkB4aNAYXad79Qs6VehcrgIeZ8p7I2FAiEAzq2HXwXlz1iJeh+ucUR3L0zpjynQk6Rk0+/gXYp49RU==',
    ),
    r,
    new VerificationCache(),
  );
  assert.match(pad.reason, /not base64/);
});

test('published cosign private keys decrypt with their password; a wrong password is refused in one line', async () => {
  for (const f of ['cosign-keys_sigstore.key', 'cosign-keys_cosign.key', 'cosign-keys_cosign-ec-sec1.key']) {
    const key = await decryptPrivateKey(fixture(f), 'hello', f);
    assert.equal(key.asymmetricKeyType, 'ec', f);
    assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1', f);
    // The decrypted key signs what its public half verifies.
    const pub = trustedKeyFromPem(publicPemOf(key), f);
    const data = Buffer.from('payload');
    const s = cryptoSign('sha256', data, { key, dsaEncoding: 'der' });
    const { verifyBytes } = await import('../../src/sign/crypto.js');
    assert.equal(verifyBytes(pub, data, s), true, f);
    assert.equal(pub.fingerprint, keyFingerprint(createPublicKey(key)));
  }
  await assert.rejects(decryptPrivateKey(fixture('cosign-keys_sigstore.key'), 'wrong', 'k'), /k: wrong password/);
});
