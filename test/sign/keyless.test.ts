import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { digestOf, type Digest } from '../../src/oci/digest.js';
import { VerificationCache } from '../../src/sign/cache.js';
import { certificateIdentity, type KeylessIdentity } from '../../src/sign/fulcio.js';
import { verifyKeyless, CERTIFICATE_ANNOTATION, REKOR_BUNDLE_ANNOTATION } from '../../src/sign/keyless.js';
import { publicGoodRoot, readTrustedRoot } from '../../src/sign/root-files.js';
import { parseTrustedRoot } from '../../src/sign/trusted-root.js';
import { evaluateRequirements } from '../../src/sign/verify.js';
import { SIGNATURE_ANNOTATION, type SignatureCandidate, type TrustRequirement } from '../../src/sign/types.js';

// Keyless signatures that cosign and sigstore-js made, checked offline against sigstore's public-good
// trusted root (origins in test/sign/fixtures/README.md). All external artifacts; no test CA here.
const FIX = fileURLToPath(new URL('../../../test/sign/fixtures/', import.meta.url));
const read = (name: string): string => readFileSync(FIX + name, 'utf8');

interface SigFixture {
  manifestDigest: Digest;
  payload: string;
  sigManifest: { layers: { digest: string; annotations: Record<string, string> }[] };
}
const GHA = JSON.parse(read('keyless/cosign-sig-github-actions.json')) as SigFixture;
const WORKFLOW =
  'https://github.com/salrashid123/go-bazel-github-workflow/.github/workflows/release.yaml@refs/tags/v0.0.14';
const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';

/** The `.sig` layer of the fixture as discovery hands it over; `edit` changes annotations or payload first. */
function sigCandidate(edit: (a: Record<string, string>) => void = () => {}, payload = GHA.payload): SignatureCandidate {
  const a = { ...GHA.sigManifest.layers[0]!.annotations };
  edit(a);
  const c: SignatureCandidate = {
    kind: 'simple-signing',
    where: 'tag sha256-adce….sig',
    id: digestOf(JSON.stringify([payload, a])),
    payload: Buffer.from(payload),
    signature: a[SIGNATURE_ANNOTATION]!,
  };
  if (a[CERTIFICATE_ANNOTATION]) c.certificate = a[CERTIFICATE_ANNOTATION];
  if (a[REKOR_BUNDLE_ANNOTATION]) c.rekorBundle = a[REKOR_BUNDLE_ANNOTATION];
  return c;
}

function keylessRequirement(identities: KeylessIdentity[], roots = [publicGoodRoot()]): TrustRequirement {
  return {
    type: 'sigstoreSigned',
    keys: [],
    keyless: { roots, identities },
    signedIdentity: { type: 'matchRepository' },
  };
}
const image = { digest: GHA.manifestDigest, dockerReference: 'docker.io/salrashid123/server_image:server' };

test('a keyless .sig from a GitHub Actions release verifies offline: chain, SET, entry for this payload, identity', () => {
  const v = verifyKeyless(sigCandidate(), publicGoodRoot());
  assert.equal(v.signed, true, JSON.stringify(v));
  assert.ok(v.signed && 'payload' in v);
  assert.equal(v.payload.manifestDigest, GHA.manifestDigest);
  assert.equal(v.identity.subject, WORKFLOW);
  assert.equal(v.identity.issuer, GITHUB_ISSUER);
  assert.deepEqual(
    { repository: v.identity.workflow.repository, ref: v.identity.workflow.ref, trigger: v.identity.workflow.trigger },
    { repository: 'salrashid123/go-bazel-github-workflow', ref: 'refs/tags/v0.0.14', trigger: 'push' },
  );
});

test('identity rules: exact, regexp and GitHub claims accept the release workflow; others are refused naming both sides', () => {
  const accept = (ids: KeylessIdentity[]) =>
    evaluateRequirements(image, [sigCandidate()], [keylessRequirement(ids)], { cache: new VerificationCache() });
  assert.equal(accept([{ issuer: GITHUB_ISSUER, subject: WORKFLOW }]).allowed, true);
  const gh = accept([
    {
      issuer: GITHUB_ISSUER,
      subjectRegExp: '^https://github\\.com/salrashid123/',
      github: { repository: 'salrashid123/go-bazel-github-workflow', ref: 'refs/tags/*', trigger: 'push' },
    },
  ]);
  assert.equal(gh.allowed, true, gh.summary);
  const wrongSubject = accept([
    { issuer: GITHUB_ISSUER, subjectRegExp: '^https://github\\.com/konard/hive-mind/.*@refs/tags/.*$' },
  ]);
  assert.equal(wrongSubject.allowed, false);
  assert.match(
    wrongSubject.summary,
    new RegExp(`signed by ${WORKFLOW.replace(/[.?*+]/g, '\\$&')} \\(issuer ${GITHUB_ISSUER.replace(/\./g, '\\.')}`),
  );
  assert.match(wrongSubject.summary, /wants subject matching \/\^https:\/\/github\\\.com\/konard\/hive-mind/);
  const wrongIssuer = accept([{ issuer: 'https://accounts.google.com', subject: WORKFLOW }]);
  assert.equal(wrongIssuer.allowed, false);
  assert.match(wrongIssuer.summary, /wants subject .*, issuer https:\/\/accounts\.google\.com \(its issuer differs\)/);
  const wrongRef = accept([{ issuer: GITHUB_ISSUER, subjectRegExp: '.*', github: { ref: 'refs/heads/main' } }]);
  assert.equal(wrongRef.allowed, false);
  assert.match(wrongRef.summary, /github ref refs\/heads\/main \(its github ref differs\)/);
});

test('the signed digest binds: the same keyless signature does not admit another image', () => {
  const other = { digest: digestOf('another manifest'), dockerReference: image.dockerReference };
  const d = evaluateRequirements(
    other,
    [sigCandidate()],
    [keylessRequirement([{ issuer: GITHUB_ISSUER, subject: WORKFLOW }])],
    { cache: new VerificationCache() },
  );
  assert.equal(d.allowed, false);
  assert.match(d.summary, /over another digest: signed sha256:adce22/);
});

test('a tampered signed entry timestamp, integrated time, or log entry for another payload is refused', () => {
  const root = publicGoodRoot();
  const edited = (f: (b: { SignedEntryTimestamp: string; Payload: Record<string, unknown> }) => void) =>
    sigCandidate((a) => {
      const b = JSON.parse(a[REKOR_BUNDLE_ANNOTATION]!);
      f(b);
      a[REKOR_BUNDLE_ANNOTATION] = JSON.stringify(b);
    });
  const set = verifyKeyless(
    edited((b) => (b.SignedEntryTimestamp = `MEUCIQ${b.SignedEntryTimestamp.slice(6)}`)),
    root,
  );
  assert.equal(set.signed, false);
  assert.match(!set.signed ? set.reason : '', /transparency-log proof does not verify/);
  // Moving the logged time outside the certificate's ten minutes breaks the SET (it covers integratedTime).
  const time = verifyKeyless(
    edited((b) => (b.Payload.integratedTime = (b.Payload.integratedTime as number) + 3600)),
    root,
  );
  assert.equal(time.signed, false);
  // Another payload (another image) with this signature and entry: the entry's hash is of the original payload.
  const otherPayload = GHA.payload.replace('adce22', 'adce23');
  const forOther = verifyKeyless(sigCandidate(undefined, otherPayload), root);
  assert.equal(forOther.signed, false);
  assert.match(
    !forOther.signed ? forOther.reason : '',
    /transparency-log entry is not for this signature|signature does not verify/,
  );
});

test('an untrusted root refuses the signature: its Fulcio CA and Rekor key are not there', () => {
  const scaffolding = readTrustedRoot(FIX + 'keyless/scaffolding.trusted_root.json', 'scaffolding');
  const v = verifyKeyless(sigCandidate(), scaffolding);
  assert.equal(v.signed, false);
  assert.match(!v.signed ? v.reason : '', /scaffolding/);
});

test('a key-only .sig (no certificate annotation) is not keyless', () => {
  const v = verifyKeyless(
    sigCandidate((a) => delete a[CERTIFICATE_ANNOTATION]),
    publicGoodRoot(),
  );
  assert.deepEqual(v, { signed: false, reason: 'it carries no certificate (a key signature, not keyless)' });
});

test('sigstore bundles v0.1 (SET) and v0.3 (inclusion proof and checkpoint) verify; their identities are read', () => {
  const v01 = readFileSync(FIX + 'keyless/sigstore-js-provenance.v01.sigstore.json');
  const c01: SignatureCandidate = { kind: 'bundle', where: 'referrer', id: digestOf(v01), payload: v01 };
  const r01 = verifyKeyless(c01, publicGoodRoot());
  assert.equal(r01.signed, true, JSON.stringify(r01));
  assert.ok(r01.signed);
  assert.equal(r01.identity.issuer, GITHUB_ISSUER);
  assert.equal(r01.identity.workflow.repository, 'sigstore/sigstore-js');
  // An SLSA provenance, not an image signature: verified, then refused as the wrong kind of statement.
  assert.ok('payloadError' in r01 && /attestation/.test(r01.payloadError));
  const v03 = readFileSync(FIX + 'cosign_oci-attestation.sigstore.json');
  const r03 = verifyKeyless({ kind: 'bundle', where: 'referrer', id: digestOf(v03), payload: v03 }, publicGoodRoot());
  assert.equal(r03.signed, true, JSON.stringify(r03));
  assert.ok(r03.signed);
  assert.equal(r03.identity.subject, 'cody@soyland.com');
  assert.equal(r03.identity.issuer, 'https://github.com/login/oauth');
  // Break the inclusion proof's checkpoint signature: refused.
  const doc = JSON.parse(v03.toString());
  const cp = doc.verificationMaterial.tlogEntries[0].inclusionProof.checkpoint;
  cp.envelope = cp.envelope.replace('53604735\n', '53604736\n');
  const bad = Buffer.from(JSON.stringify(doc));
  const rb = verifyKeyless({ kind: 'bundle', where: 'referrer', id: digestOf(bad), payload: bad }, publicGoodRoot());
  assert.equal(rb.signed, false);
  assert.match(!rb.signed ? rb.reason : '', /transparency-log proof does not verify.*checkpoint/i);
});

test('the certificate identity reads the deprecated and the newer Fulcio extensions', () => {
  const pem = GHA.sigManifest.layers[0]!.annotations[CERTIFICATE_ANNOTATION]!;
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  const id = certificateIdentity(der);
  assert.equal(id.workflow.buildSignerURI, WORKFLOW);
  assert.equal(id.workflow.runnerEnvironment, 'github-hosted');
  assert.equal(id.workflow.sha, '291dab9af96caa83aef0968dc1f757039d3c166b');
});

test('a trusted root without a Fulcio CA or Rekor key, or not a trusted root, is refused when loaded', () => {
  const empty = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  };
  assert.throws(
    () => parseTrustedRoot(Buffer.from(JSON.stringify(empty)), 'empty'),
    /empty: lists no certificate authority/,
  );
  assert.throws(() => parseTrustedRoot(Buffer.from('{"mediaType":"x"}'), 'x'), /not a sigstore trusted root/);
  assert.throws(() => parseTrustedRoot(Buffer.alloc(2 * 1024 * 1024), 'big'), /over the/);
});

// sigstore-js's own v0.2 bundles (tests/bundles/, test/sign/fixtures/README.md): one logged as a `dsse` entry, one as
// `intoto` 0.0.2, each with an inclusion proof under a signed checkpoint and a SET, made on the public-good instance.
const V02 = ['dsse', 'intoto'].map((kind) => ({
  kind,
  bytes: readFileSync(`${FIX}keyless/sigstore-js_bundleV02-${kind}.sigstore.json`),
}));
const bundleCandidate = (bytes: Buffer): SignatureCandidate => ({
  kind: 'bundle',
  where: 'referrer',
  id: digestOf(bytes),
  payload: bytes,
});
// biome-ignore lint/suspicious/noExplicitAny: the test edits a bundle's JSON at paths its type would not allow
const editBundle = (bytes: Buffer, f: (doc: any) => void): Buffer => {
  const doc = JSON.parse(bytes.toString());
  f(doc);
  return Buffer.from(JSON.stringify(doc));
};

test('sigstore bundles v0.2 (dsse and intoto log entries) verify: chain, checkpoint, SET; their identity is read', () => {
  for (const { kind, bytes } of V02) {
    assert.match(
      JSON.parse(bytes.toString()).mediaType,
      /^application\/vnd\.dev\.sigstore\.bundle\+json;version=0\.2$/,
    );
    const r = verifyKeyless(bundleCandidate(bytes), publicGoodRoot());
    assert.equal(r.signed, true, `${kind}: ${JSON.stringify(r)}`);
    assert.ok(r.signed);
    assert.equal(r.identity.subject, 'brian@dehamer.com');
    assert.equal(r.identity.issuer, 'https://github.com/login/oauth');
    // npm publish attestations: genuine, and still not a signature of an image.
    assert.ok(
      'payloadError' in r && /attestation of type "https:\/\/github\.com\/npm\/attestation/.test(r.payloadError),
      kind,
    );
  }
});

test('sigstore bundles v0.2: another payload, a broken checkpoint, a log entry for another signature or another root are refused', () => {
  const root = publicGoodRoot();
  for (const { kind, bytes } of V02) {
    const refused = (b: Buffer, r = root) => {
      const v = verifyKeyless(bundleCandidate(b), r);
      assert.equal(v.signed, false, `${kind}: ${JSON.stringify(v)}`);
      return v.signed ? '' : v.reason;
    };
    const otherPayload = editBundle(bytes, (d) => {
      const st = Buffer.from(d.dsseEnvelope.payload, 'base64').toString().replace('sigstore@1.0.0', 'sigstore@6.6.6');
      d.dsseEnvelope.payload = Buffer.from(st).toString('base64');
    });
    assert.match(refused(otherPayload), /transparency-log entry is not for this signature|signature does not verify/);
    const checkpoint = editBundle(bytes, (d) => {
      const cp = d.verificationMaterial.tlogEntries[0].inclusionProof.checkpoint;
      cp.envelope = cp.envelope.replace(/\n(\d+)\n/, (_: string, n: string) => `\n${Number(n) + 1}\n`);
    });
    assert.match(refused(checkpoint), /transparency-log proof does not verify/);
    // The other bundle's log entry under this envelope: logged at another time (outside this certificate's ten
    // minutes) and for another signature; whichever check sigstore-js makes first refuses it.
    const other = JSON.parse(V02.find((x) => x.kind !== kind)!.bytes.toString());
    const swapped = editBundle(
      bytes,
      (d) => (d.verificationMaterial.tlogEntries = other.verificationMaterial.tlogEntries),
    );
    assert.match(refused(swapped), /valid at the logged time|transparency-log entry is not for this signature/);
    assert.match(
      refused(bytes, readTrustedRoot(FIX + 'keyless/scaffolding.trusted_root.json', 'scaffolding')),
      /scaffolding/,
    );
  }
});

test('a v0.2 bundle under an identity rule: the refusal names its signer and why the payload is not an image signature', () => {
  const req = keylessRequirement([{ issuer: 'https://github.com/login/oauth', subject: 'brian@dehamer.com' }]);
  const d = evaluateRequirements(image, [bundleCandidate(V02[0]!.bytes)], [req], { cache: new VerificationCache() });
  assert.equal(d.allowed, false);
  assert.match(
    d.summary,
    /signed by brian@dehamer\.com \(issuer https:\/\/github\.com\/login\/oauth\), but its payload is not an image signature: an attestation/,
  );
});
