import type { FastifyRequest } from 'fastify';
import { isDigest, type Digest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/name.js';
import { StorageSource } from '../transport/storage-source.js';
import type { RegistryContext } from './context.js';
import { emitForRequest } from './events.js';
import { OciError } from '../oci/errors.js';
import { looksLikeHost, registryHost } from './registry-name.js';
import type { TrustVerdict } from './trust-setup.js';

/** The manifest a pull is about to serve: the name and reference asked for, and the stored bytes. */
export interface ServedManifest {
  name: RepositoryName;
  reference: string;
  digest: Digest;
  bytes: Uint8Array;
}

/** Throws the registry's DENIED for a refused verdict. */
function requireTrusted(v: TrustVerdict, what: string): void {
  if (!v.allowed) throw new OciError('DENIED', `${what} is refused: ${v.reason}`);
}

const DECISION_TTL_MS = 5_000;
const decisions = new WeakMap<RegistryContext, Map<string, { verdict: TrustVerdict; until: number }>>();
/** Checks under way by key: the pulls that find an approval expired at the same moment wait for one check, not one each. */
const running = new WeakMap<RegistryContext, Map<string, Promise<TrustVerdict>>>();

/**
 * The name identity rules judge an image by: a cache or mirror repository already carries its registry
 * (`docker.io/library/nginx`); a local repository is this registry's, as configured (`http.host`). Never
 * the Host a client sends: that would let a signature made for `evil.example/prod/app` pass here.
 */
function dockerName(ctx: RegistryContext, name: string): string {
  if (looksLikeHost(name.split('/')[0]!)) return name;
  // Startup refuses a rule that needs this name when http.host is unset (requireRegistryName), so this is a fallback for rules that do not.
  return `${registryHost(ctx.config) ?? 'localhost'}/${name}`;
}

/**
 * Refuses a manifest pull the `trust:` rules require a signature for and that has none that satisfies
 * them, except for callers who may push to the repository (with access control on: a builder reads and
 * signs what it pushed), HEAD, which shows only the digest, and evidence (a signature, attestation or SBOM
 * manifest, recognised by its layers' media types, not by its tag). A child of an index is judged by its index (signatures cover the index digest). Approvals are
 * kept a few seconds per (repository, digest), so a warm pull costs a map lookup; the signature checks
 * themselves are cached by (manifest, signature, key) in the verification cache.
 */
export async function checkPull(ctx: RegistryContext, req: FastifyRequest, served: ServedManifest): Promise<void> {
  const { name, reference, digest } = served;
  const trust = ctx.trust;
  if (!trust?.ruleFor(name, 'pull')) return;
  // HEAD gives a digest and no content; whoever may push here (the builder that signs what it pushed) may read it.
  if (req.method === 'HEAD') return;
  // Signatures, attestations and SBOMs are what images are judged by, not images: `sluice verify` and cosign must read them.
  if (trust.isEvidence(served.bytes)) return;
  if (ctx.mayPush && (await ctx.mayPush(req, name))) return;
  let cache = decisions.get(ctx);
  if (!cache) {
    cache = new Map();
    decisions.set(ctx, cache);
  }
  // The tag and the name judged are part of the key: under matchRepoDigestOrExact a signature names one tag
  // of one registry name, so an approval of `app:1` says nothing about `app:2` pointing at the same digest,
  // nor about the same tag asked for under another Host.
  const named = dockerName(ctx, name);
  const key = isDigest(reference) ? `${named}@${digest}` : `${named}:${reference}@${digest}`;
  const hit = cache.get(key);
  const what = `${name}${isDigest(reference) ? `@${reference}` : `:${reference}`}`;
  if (hit && hit.until > Date.now()) return requireTrusted(hit.verdict, what);
  let inFlight = running.get(ctx);
  if (!inFlight) {
    inFlight = new Map();
    running.set(ctx, inFlight);
  }
  let check = inFlight.get(key);
  if (!check) {
    const flight = inFlight;
    check = judge(ctx, trust, named, name, reference, digest).finally(() => flight.delete(key));
    inFlight.set(key, check);
  }
  const verdict = await check;
  // Only approvals are kept: an image signed a moment ago pulls at once; a removed signature stops it within seconds.
  if (verdict.allowed) {
    if (cache.size > 10_000) cache.clear();
    cache.set(key, { verdict, until: Date.now() + DECISION_TTL_MS });
  } else {
    const tag = isDigest(reference) ? undefined : reference;
    await emitForRequest(ctx, req, [
      {
        type: 'trust.refused',
        target: { repository: name, digest, ...(tag ? { tag } : {}) },
        data: { reason: verdict.reason },
      },
    ]);
  }
  requireTrusted(verdict, what);
}

/** Reads the signatures of what a pull serves (its index's, for a child) and checks them against the rules. */
async function judge(
  ctx: RegistryContext,
  trust: NonNullable<RegistryContext['trust']>,
  named: string,
  name: RepositoryName,
  reference: string,
  digest: Digest,
): Promise<TrustVerdict> {
  const repo = ctx.repo(name);
  let subject = digest;
  await ctx.scanner.refresh(repo);
  const listing = await ctx.scanner.indexListing(repo, digest);
  if (listing) subject = listing.index;
  const ref = `${named}${isDigest(reference) ? `@${subject}` : `:${reference}`}`;
  return trust.check(new StorageSource(repo, ctx.blobs, subject), name, 'pull', subject, ref);
}
