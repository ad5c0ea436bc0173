// Keyless rows of the trust workload (issue 21): what a keyless signature costs to verify cold (certificate
// chain, the log's signed entry timestamp or checkpoint, the entry against the signature, the signature: the
// first pull of an image, no cache) and what a warm pull costs under an `identities:` rule once approved,
// against the same registry with trust off. Cold rows verify published signatures (a GitHub Actions `.sig` and
// cosign's v0.3 bundle, test/sign/fixtures) under the shipped public-good root; the warm rows need an image we
// hold, so it is signed by the test sigstore (test/helpers/keyless.ts: a CA made with openssl, a log key).
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyRequest } from 'fastify';
import { validateConfig } from '../src/config/load.js';
import { digestOf, type Digest } from '../src/oci/digest.js';
import type { RepositoryName } from '../src/oci/name.js';
import { buildRegistry } from '../src/registry/server.js';
import { checkPull } from '../src/registry/trust-pull.js';
import { publicGoodRoot, verifyKeyless } from '../src/sign/index.js';
import type { SignatureCandidate } from '../src/sign/types.js';
import { GITHUB_ISSUER, makeTestSigstore, pushKeylessSignature, releaseSigner } from '../test/helpers/keyless.js';
import type { MetricInfo } from './report.js';
import { injectTrustAB } from './trust.js';
import { pushSmallImage, type Sample } from './workloads.js';

const REPO = 'bench/keyless';
const HOST = 'registry.bench';
const FIX = fileURLToPath(new URL('../../test/sign/fixtures/', import.meta.url));

/** The keyless rows, each against the same thing without trust (Dist column). */
export const KEYLESS_METRICS: MetricInfo[] = [
  {
    id: 'trust.keyless.cold-sig.us',
    label: 'trust: keyless .sig verified cold (public-good root, no cache), per signature (Dist column: none)',
    unit: 'µs',
    better: 'lower',
  },
  {
    id: 'trust.keyless.cold-bundle.us',
    label: 'trust: keyless bundle v0.3 verified cold (public-good root, no cache), per signature (Dist column: none)',
    unit: 'µs',
    better: 'lower',
  },
  {
    id: 'trust.keyless.inject.us',
    label:
      'trust: warm manifest GET by tag in process (inject), keyless identity required (Dist column: same registry, trust off)',
    unit: 'µs',
    better: 'lower',
  },
  {
    id: 'trust.keyless.check.us',
    label: 'trust: the warm keyless check alone (approval cached), per pull (Dist column: trust off)',
    unit: 'µs',
    better: 'lower',
  },
];

// The published signatures as discovery hands them over.
function publishedCandidates(): { sig: SignatureCandidate; bundle: SignatureCandidate } {
  const gha = JSON.parse(readFileSync(`${FIX}keyless/cosign-sig-github-actions.json`, 'utf8')) as {
    payload: string;
    sigManifest: { layers: { annotations: Record<string, string> }[] };
  };
  const a = gha.sigManifest.layers[0]!.annotations;
  const sig: SignatureCandidate = {
    kind: 'simple-signing',
    where: 'tag',
    id: digestOf(gha.payload),
    payload: Buffer.from(gha.payload),
    signature: a['dev.cosignproject.cosign/signature']!,
    certificate: a['dev.sigstore.cosign/certificate']!,
    rekorBundle: a['dev.sigstore.cosign/bundle']!,
  };
  const bytes = readFileSync(`${FIX}cosign_oci-attestation.sigstore.json`);
  return { sig, bundle: { kind: 'bundle', where: 'referrer', id: digestOf(bytes), payload: bytes } };
}

function timeCold(c: SignatureCandidate, calls: number): number {
  const root = publicGoodRoot();
  if (!verifyKeyless(c, root).signed) throw new Error(`the published ${c.kind} signature does not verify`);
  const t = performance.now();
  for (let n = 0; n < calls; n++) verifyKeyless(c, root);
  return ((performance.now() - t) * 1000) / calls;
}

/** Fills the keyless rows: cold verification of published signatures, then warm pulls on one registry, trust on and off. */
export async function keylessInProcess(seconds: number, withRule: Sample, without: Sample): Promise<void> {
  const { sig, bundle } = publishedCandidates();
  // 20 verifications a second of the cell time (200 at the default 10 s), 20 at least: --quick stays quick.
  const calls = Math.max(20, Math.round(20 * seconds));
  withRule['trust.keyless.cold-sig.us'] = timeCold(sig, calls);
  withRule['trust.keyless.cold-bundle.us'] = timeCold(bundle, calls);
  without['trust.keyless.cold-sig.us'] = 0;
  without['trust.keyless.cold-bundle.us'] = 0;

  const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-keyless-'));
  const store = makeTestSigstore(dir);
  const subjectRegExp = '^https://github\\.com/bench/app/\\.github/workflows/release\\.yml@refs/tags/';
  const raw = {
    log: { level: 'silent' },
    http: { addr: '127.0.0.1:0', host: `http://${HOST}` },
    storage: { filesystem: { rootdirectory: join(dir, 'data') } },
    trust: {
      roots: { bench: store.rootPath },
      require: [
        { images: [REPO], identities: [{ issuer: GITHUB_ISSUER, subjectRegExp }], roots: ['bench'], on: ['pull'] },
      ],
    },
  };
  const reg = buildRegistry({ config: validateConfig(raw).config, logger: false });
  try {
    const url = await reg.app.listen({ host: '127.0.0.1', port: 0 });
    await pushSmallImage(url, REPO, 'latest');
    const digest = (await reg.ctx.repo(REPO as RepositoryName).resolveTag('latest')) as Digest;
    await pushKeylessSignature(url, REPO, digest, `${HOST}/${REPO}:latest`, store, releaseSigner('bench/app'));
    const trust = reg.ctx.trust;
    if (!trust) throw new Error('the trust section did not load');
    const host = url.replace(/^http:\/\//, '');
    const ab = await injectTrustAB(reg, `/v2/${REPO}/manifests/latest`, host, seconds);
    withRule['trust.keyless.inject.us'] = ab.on;
    without['trust.keyless.inject.us'] = ab.off;
    const req = { method: 'GET', headers: { host } } as unknown as FastifyRequest;
    const served = {
      name: REPO as RepositoryName,
      reference: 'latest',
      digest,
      bytes: (await reg.ctx.repo(REPO as RepositoryName).getManifest(digest))!.bytes,
    };
    await checkPull(reg.ctx, req, served);
    const checks = 20_000;
    for (const [enforce, out] of [
      [true, withRule],
      [false, without],
    ] as const) {
      reg.ctx.trust = enforce ? trust : undefined;
      const t = performance.now();
      for (let n = 0; n < checks; n++) await checkPull(reg.ctx, req, served);
      out['trust.keyless.check.us'] = ((performance.now() - t) * 1000) / checks;
    }
    reg.ctx.trust = trust;
  } finally {
    await reg.app.close();
    await rm(dir, { recursive: true, force: true });
  }
}
