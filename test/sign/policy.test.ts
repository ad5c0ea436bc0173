import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import {
  parsePolicy,
  requirementsFor,
  dockerSubject,
  layoutScopes,
  dockerScopes,
  PolicyFileError,
} from '../../src/sign/policy-file.js';
import { loadPolicyFile } from '../../src/sign/key-files.js';
import { evaluateRequirements } from '../../src/sign/verify.js';
import { buildPayload } from '../../src/sign/payload.js';
import { parseReference } from '../../src/oci/reference.js';
import { digestOf } from '../../src/oci/digest.js';
import { VerificationCache } from '../../src/sign/cache.js';
import type { SignatureCandidate } from '../../src/sign/types.js';

test('docker scopes run from the exact image to the host, then wildcard domains, as containers/image lists them', () => {
  assert.deepEqual(dockerScopes(parseReference('registry.example.com:5000/ns/app:1')), [
    'registry.example.com:5000/ns/app:1',
    'registry.example.com:5000/ns/app',
    'registry.example.com:5000/ns',
    'registry.example.com:5000',
    '*.example.com',
    '*.com',
  ]);
  assert.deepEqual(dockerScopes(parseReference('busybox:latest')).slice(0, 3), [
    'docker.io/library/busybox:latest',
    'docker.io/library/busybox',
    'docker.io/library',
  ]);
  assert.deepEqual(layoutScopes('/srv/images/app', 'v1'), [
    '/srv/images/app:v1',
    '/srv/images/app',
    '/srv/images',
    '/srv',
  ]);
});

const POLICY = {
  default: [{ type: 'reject' }],
  transports: {
    docker: {
      'docker.io/library/busybox': [{ type: 'insecureAcceptAnything' }],
      'registry.example.com/prod': [
        { type: 'sigstoreSigned', keyPath: 'keys/prod.pub', signedIdentity: { type: 'matchRepository' } },
      ],
      'registry.example.com/prod/special:1': [{ type: 'reject' }],
      '*.example.com': [{ type: 'insecureAcceptAnything' }],
    },
    oci: { '': [{ type: 'insecureAcceptAnything' }] },
  },
};

test('the most specific scope wins, then the transport default, then the global default', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-policy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  await mkdir(join(dir, 'keys'));
  await writeFile(join(dir, 'keys', 'prod.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  await writeFile(join(dir, 'policy.json'), JSON.stringify(POLICY));
  // keyPath is relative to the policy file, not to the working directory.
  const policy = await loadPolicyFile(join(dir, 'policy.json'));
  const scope = (ref: string) => requirementsFor(policy, dockerSubject(parseReference(ref)));
  assert.equal(scope('busybox:1').scope, 'docker:docker.io/library/busybox');
  assert.equal(scope('busybox:1').requirements[0]!.type, 'insecureAcceptAnything');
  assert.equal(scope('registry.example.com/prod/app:1').scope, 'docker:registry.example.com/prod');
  assert.equal(scope('registry.example.com/prod/app:1').requirements[0]!.type, 'sigstoreSigned');
  assert.equal(scope('registry.example.com/prod/special:1').requirements[0]!.type, 'reject');
  assert.equal(scope('registry.example.com/dev/app:1').scope, 'docker:*.example.com');
  assert.equal(scope('quay.io/x/y:1').scope, 'default');
  assert.equal(
    requirementsFor(policy, { transport: 'oci', scopes: layoutScopes('/x/y', 't') }).scope,
    'oci:"" (transport default)',
  );
});

test('the policy is strict: unknown fields, types, empty lists and keyless options stop it with the JSON path', () => {
  const bad: [unknown, RegExp][] = [
    [{ default: [{ type: 'insecureAcceptAnything', extra: 1 }] }, /default\[0\]: unknown field "extra"/],
    [{ default: [] }, /policy.default is empty/],
    [{}, /"default" is required/],
    [{ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k' }] }, /signedBy .* not supported/],
    // Keyless (fulcio) is read as containers/image writes it; an incomplete one, or a private PKI, is refused.
    [
      { default: [{ type: 'sigstoreSigned', fulcio: {}, signedIdentity: { type: 'matchRepository' } }] },
      /fulcio: exactly one of caPath and caData/,
    ],
    [
      {
        default: [{ type: 'sigstoreSigned', fulcio: { caPath: '/ca', oidcIssuer: 'https://i', subjectEmail: 'a@b' } }],
      },
      /fulcio needs a Rekor key/,
    ],
    [
      {
        default: [
          {
            type: 'sigstoreSigned',
            fulcio: { caPath: '/ca', oidcIssuer: 'https://i', subjectEmail: 'a@b' },
            keyPath: '/k',
            rekorPublicKeyPath: '/r',
          },
        ],
      },
      /fulcio and keyPath exclude each other/,
    ],
    [{ default: [{ type: 'sigstoreSigned', pki: {} }] }, /pki .* not supported/],
    [
      { default: [{ type: 'sigstoreSigned', keyPath: '/k', rekorPublicKeyPath: '/r' }] },
      /rekorPublicKeyPath without fulcio/,
    ],
    [
      { default: [{ type: 'sigstoreSigned', keyPath: '/a', keyData: 'eA==' }] },
      /exactly one of keyPath, keyPaths, keyData and keyDatas/,
    ],
    [
      {
        default: [
          { type: 'sigstoreSigned', keyPath: '/a', signedIdentity: { type: 'matchRepository', dockerRepository: 'x' } },
        ],
      },
      /signedIdentity: unknown field "dockerRepository"/,
    ],
    [
      {
        default: [
          {
            type: 'sigstoreSigned',
            keyPath: '/a',
            signedIdentity: { type: 'remapIdentity', prefix: 'mirror.local/App', signedPrefix: 'docker.io' },
          },
        ],
      },
      /must be a host\[:port\] or a name that starts with one/,
    ],
    [
      { default: [{ type: 'insecureAcceptAnything' }], transports: { docker: { 'x.io': [{ type: 'rejct' }] } } },
      /transports\.docker\["x\.io"\]\[0\]\.type "rejct"/,
    ],
  ];
  for (const [doc, want] of bad)
    assert.throws(
      () => parsePolicy(JSON.stringify(doc)),
      (e: Error) => e instanceof PolicyFileError && want.test(e.message),
      JSON.stringify(doc),
    );
});

test('a refusal names the requirement, the scope, the keys tried and what was found', async () => {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keyData = Buffer.from(publicKey.export({ type: 'spki', format: 'pem' })).toString('base64');
  const policy = parsePolicy(
    JSON.stringify({ default: [{ type: 'sigstoreSigned', keyData, signedIdentity: { type: 'matchRepository' } }] }),
  );
  const { resolvePolicy } = await import('../../src/sign/policy-file.js');
  const { trustedKeyFromPem } = await import('../../src/sign/crypto.js');
  const resolved = resolvePolicy(policy, (s) => trustedKeyFromPem(Buffer.from(s, 'base64').toString(), 'keyData'));
  const digest = digestOf('image');
  const image = { digest, dockerReference: 'example.com/app:1' };
  const payload = buildPayload('example.com/app', digest);
  const cand = (key: typeof privateKey): SignatureCandidate => {
    const signature = cryptoSign('sha256', payload, { key, dsaEncoding: 'der' }).toString('base64');
    return {
      kind: 'simple-signing',
      where: 'tag s.sig',
      id: digestOf(`${digestOf(payload)}\n${signature}`),
      payload,
      signature,
    };
  };
  const { requirements, scope } = requirementsFor(resolved, { transport: 'docker', scopes: ['example.com/app'] });
  const none = evaluateRequirements(image, [], requirements, { scope, searched: ['tag sha256-x.sig', 'referrers'] });
  assert.equal(none.allowed, false);
  assert.match(
    none.summary,
    /refused by requirement "sigstoreSigned by keyData with matchRepository" \(policy scope default\): no signatures found .*looked at tag sha256-x.sig, referrers.*keys tried: keyData \(SHA256:/,
  );
  const wrong = evaluateRequirements(image, [cand(other.privateKey)], requirements, {
    scope,
    cache: new VerificationCache(),
  });
  assert.match(wrong.summary, /tag s\.sig: signed by another key, not keyData/);
  const ok = evaluateRequirements(image, [cand(other.privateKey), cand(privateKey)], requirements, {
    scope,
    cache: new VerificationCache(),
  });
  assert.equal(ok.allowed, true, ok.summary);
  assert.equal(ok.results[0]!.signatures.filter((s) => s.accepted).length, 1);
  const rejected = evaluateRequirements(image, [cand(privateKey)], [...requirements, { type: 'reject' }]);
  assert.equal(rejected.allowed, false);
  assert.match(rejected.summary, /refused by requirement "reject"/);
});
