import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { digestOf } from '../../src/oci/digest.js';
import { VerificationCache } from '../../src/sign/cache.js';
import { JWS_MEDIA_TYPE, COSE_MEDIA_TYPE, type NotationStore } from '../../src/sign/notation.js';
import { NOTATION_LEVELS, notationRequirement, parseNotationPolicy } from '../../src/sign/notation-policy.js';
import { evaluateRequirements } from '../../src/sign/verify.js';
import type { SignatureCandidate, TrustRequirement } from '../../src/sign/types.js';
import { makeTestNotation } from '../helpers/notation.js';

// notation's verification levels (strict, permissive, audit, skip) and `override`, as the Notary Project trust policy
// specification tables them. Authenticity, authentic timestamp and identity are shown on notation-go's own JWS and
// COSE envelopes (test/sign/fixtures/README.md); expiry, revocation and the signingAuthority time on envelopes made
// here with a test CA (test/helpers/notation.ts), since no published envelope has them.
const FIX = fileURLToPath(new URL('../../../test/sign/fixtures/notation/', import.meta.url));
const JWS = readFileSync(FIX + 'jws_signature.sig');
const COSE = readFileSync(FIX + 'cose_signature.sig');
const DIGEST = digestOf(
  readFileSync(FIX + 'oci-layout/blobs/sha256/19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0'),
);
const NOW = Date.parse('2026-12-07T00:00:00Z');
const leaf = new X509Certificate(
  Buffer.from((JSON.parse(JWS.toString()) as { header: { x5c: string[] } }).header.x5c[0]!, 'base64'),
);
const alpine: NotationStore = { name: 'ca:alpine', type: 'ca', certs: [leaf] };
const wabbit: NotationStore = {
  name: 'ca:wabbit-networks',
  type: 'ca',
  certs: [new X509Certificate(readFileSync(FIX + 'wabbit-networks.io.crt'))],
};
const cand = (bytes: Buffer, mediaType = JWS_MEDIA_TYPE): SignatureCandidate => ({
  kind: 'notation',
  where: `referrer (${mediaType})`,
  id: digestOf(bytes),
  payload: bytes,
  mediaType,
});

/** The requirement trustpolicy.json gives for one policy of `level` (and `override`), with `stores` and `identities`. */
function requirement(
  level: string,
  stores: NotationStore[],
  opts: { override?: Record<string, string>; identities?: string[] } = {},
): TrustRequirement {
  const signatureVerification: Record<string, unknown> = { level };
  if (opts.override) signatureVerification.override = opts.override;
  const [p] = parseNotationPolicy(
    JSON.stringify({
      version: '1.0',
      trustPolicies: [
        {
          name: 'p',
          registryScopes: ['*'],
          signatureVerification,
          trustStores: stores.map((s) => s.name),
          trustedIdentities: opts.identities ?? ['*'],
        },
      ],
    }),
  );
  return notationRequirement(p, (n) => stores.find((s) => s.name === n)!, 'registry.example/app');
}
const judge = (req: TrustRequirement, sigs: SignatureCandidate[], now = NOW, digest = DIGEST) =>
  evaluateRequirements({ digest }, sigs, [req], { cache: new VerificationCache(), now });

test('trustpolicy.json levels read as the specification tables them; override applies, and what it may not set is refused', () => {
  const level = (l: string, override?: Record<string, string>) =>
    parseNotationPolicy(
      JSON.stringify({
        version: '1.0',
        trustPolicies: [
          {
            name: 'p',
            registryScopes: ['*'],
            signatureVerification: override ? { level: l, override } : { level: l },
            trustStores: ['ca:x'],
            trustedIdentities: ['*'],
          },
        ],
      }),
    )[0]!;
  assert.deepEqual(level('strict').enforcement, {
    authenticity: 'enforce',
    authenticTimestamp: 'enforce',
    expiry: 'enforce',
    revocation: 'enforce',
  });
  assert.deepEqual(level('permissive').enforcement, {
    authenticity: 'enforce',
    authenticTimestamp: 'log',
    expiry: 'log',
    revocation: 'log',
  });
  assert.deepEqual(level('audit').enforcement, {
    authenticity: 'log',
    authenticTimestamp: 'log',
    expiry: 'log',
    revocation: 'log',
  });
  assert.equal(level('skip').enforcement, undefined);
  assert.deepEqual(level('strict', { expiry: 'log', revocation: 'skip' }).enforcement, {
    ...NOTATION_LEVELS.strict,
    expiry: 'log',
    revocation: 'skip',
  });
  assert.deepEqual(level('audit', { authenticity: 'enforce' }).enforcement, {
    ...NOTATION_LEVELS.audit,
    authenticity: 'enforce',
  });
  assert.throws(() => level('strict', { integrity: 'log' }), /integrity cannot be overridden/);
  assert.throws(
    () => level('strict', { authenticity: 'skip' }),
    /override authenticity must be enforce or log, not "skip"/,
  );
  assert.throws(() => level('strict', { expiry: 'skip' }), /override expiry must be enforce or log/);
  assert.throws(
    () => level('strict', { trust: 'log' }),
    /override key "trust" is not one of authenticity, authenticTimestamp, expiry, revocation/,
  );
  assert.throws(() => level('skip', { revocation: 'log' }), /the skip level cannot be overridden/);
});

test('authenticity (notation-go envelopes, a store that does not vouch): enforced by strict and permissive, only logged by audit', () => {
  for (const [bytes, mt] of [
    [JWS, JWS_MEDIA_TYPE],
    [COSE, COSE_MEDIA_TYPE],
  ] as const) {
    for (const l of ['strict', 'permissive']) {
      const d = judge(requirement(l, [wabbit]), [cand(bytes, mt)]);
      assert.equal(d.allowed, false, `${l} ${mt}`);
      assert.match(
        d.summary,
        /not a valid notation signature: its chain does not end at a certificate of trust store ca:wabbit-networks/,
      );
    }
    const audit = judge(requirement('audit', [wabbit]), [cand(bytes, mt)]);
    assert.equal(audit.allowed, true, audit.summary);
    assert.match(
      audit.summary,
      /notation signature by C=US, ST=WA, L=Seattle, O=Notary, CN=alpine \(no trust store vouches for it\); level audit only logs: authenticity: its chain does not end at a certificate of trust store ca:wabbit-networks/,
    );
    assert.equal(
      judge(requirement('audit', [wabbit], { override: { authenticity: 'enforce' } }), [cand(bytes, mt)]).allowed,
      false,
    );
  }
  // The trusted identity is part of authenticity.
  const ids = ['x509.subject: C=US, ST=WA, O=wabbit-networks.io'];
  const strict = judge(requirement('strict', [alpine], { identities: ids }), [cand(JWS)]);
  assert.equal(strict.allowed, false);
  assert.match(
    strict.summary,
    /signed by C=US, ST=WA, L=Seattle, O=Notary, CN=alpine \(trust store ca:alpine\), but the rule trusts only x509\.subject: C=US, ST=WA, O=wabbit-networks\.io/,
  );
  const audit = judge(requirement('audit', [alpine], { identities: ids }), [cand(JWS)]);
  assert.equal(audit.allowed, true);
  assert.match(audit.summary, /only logs: authenticity: signed by .*CN=alpine .*but the rule trusts only/);
});

test('integrity is enforced at every level but skip: a tampered envelope, another digest, no signature at all', () => {
  const doc = JSON.parse(JWS.toString());
  doc.payload = Buffer.from(
    JSON.stringify({
      targetArtifact: { digest: digestOf('x'), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1 },
    }),
  ).toString('base64url');
  const forged = cand(Buffer.from(JSON.stringify(doc)));
  for (const l of ['strict', 'permissive', 'audit']) {
    assert.match(judge(requirement(l, [alpine]), [forged]).summary, /PS256 signature does not verify/, l);
    const other = judge(requirement(l, [alpine]), [cand(JWS)], NOW, digestOf('another manifest'));
    assert.equal(other.allowed, false, l);
    assert.match(other.summary, /over another digest/);
    // As notation: "no signature is associated with" the artifact fails whatever the level.
    assert.match(judge(requirement(l, [alpine]), []).summary, /no notation signatures found/);
  }
  assert.equal(judge(requirement('skip', [alpine]), []).allowed, true);
});

test('authentic timestamp (a certificate past its validity): enforced by strict, logged by permissive and audit, or by override', () => {
  const late = Date.parse('2124-01-01T00:00:00Z');
  const strict = judge(requirement('strict', [alpine]), [cand(JWS)], late);
  assert.equal(strict.allowed, false);
  assert.match(
    strict.summary,
    /certificate 1 of the chain \(C=US, ST=WA, L=Seattle, O=Notary, CN=alpine\) is not valid now/,
  );
  for (const l of ['permissive', 'audit']) {
    const d = judge(requirement(l, [alpine]), [cand(COSE, COSE_MEDIA_TYPE)], late);
    assert.equal(d.allowed, true, d.summary);
    assert.match(
      d.summary,
      new RegExp(`level ${l} only logs: authenticTimestamp: certificate 1 of the chain .* is not valid now`),
    );
  }
  assert.equal(
    judge(requirement('strict', [alpine], { override: { authenticTimestamp: 'log' } }), [cand(JWS)], late).allowed,
    true,
  );
  assert.equal(
    judge(requirement('permissive', [alpine], { override: { authenticTimestamp: 'enforce' } }), [cand(JWS)], late)
      .allowed,
    false,
  );
});

test('expiry and revocation (test CA envelopes): expired and revocation-unavailable are enforced by strict, logged by permissive, skipped by override', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-notation-levels-'));
  try {
    const n = makeTestNotation(dir);
    const acme = n.store('ca:acme');
    const digest = digestOf('an image');
    const at = (l: string, bytes: Buffer, override?: Record<string, string>) =>
      judge(requirement(l, [acme], override ? { override } : {}), [cand(bytes)], Date.now(), digest);
    const plain = at('strict', n.sign(digest));
    assert.equal(plain.allowed, true, plain.summary);
    assert.doesNotMatch(plain.summary, /logs/);

    const expired = n.sign(digest, { expiry: Date.now() - 60_000 });
    assert.match(at('strict', expired).summary, /not a valid notation signature: the signature expired at \d{4}-/);
    assert.match(at('permissive', expired).summary, /level permissive only logs: expiry: the signature expired at/);
    assert.equal(at('strict', expired, { expiry: 'log' }).allowed, true);
    assert.equal(at('strict', n.sign(digest, { expiry: Date.now() + 3_600_000 })).allowed, true);

    for (const via of [{ crl: true }, { ocsp: true }]) {
      const revocable = n.sign(digest, via);
      const strict = at('strict', revocable);
      assert.equal(strict.allowed, false);
      const what = via.crl ? 'a CRL' : 'an OCSP responder';
      assert.match(
        strict.summary,
        new RegExp(
          `the revocation status of certificate 1 \\(C=US, ST=WA, O=Acme, CN=release\\) is unavailable: it names ${what}, and Sluice makes no network request while verifying`,
        ),
      );
      assert.match(
        at('permissive', revocable).summary,
        /level permissive only logs: revocation: the revocation status of certificate 1/,
      );
      const skipped = at('strict', revocable, { revocation: 'skip' });
      assert.equal(skipped.allowed, true);
      assert.doesNotMatch(skipped.summary, /revocation/);
    }

    // signingAuthority: the chain is judged at the authentic signing time the envelope carries, which it must carry.
    const sa = n.store('signingAuthority:acme');
    const saAt = (bytes: Buffer) => judge(requirement('strict', [sa]), [cand(bytes)], Date.now(), digest);
    // Signed a minute after the certificate was issued (openssl starts its validity at issuance, to the second).
    assert.equal(
      saAt(n.sign(digest, { scheme: 'notary.x509.signingAuthority', signingTime: Date.now() + 60_000 })).allowed,
      true,
    );
    assert.match(
      saAt(n.sign(digest, { scheme: 'notary.x509.signingAuthority' })).summary,
      /carries no authentic signing time/,
    );
    assert.match(
      saAt(n.sign(digest, { scheme: 'notary.x509.signingAuthority', signingTime: Date.now() - 5 * 86_400_000 }))
        .summary,
      /is not valid at its signing time/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
