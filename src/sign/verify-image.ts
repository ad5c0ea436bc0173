import { resolve } from 'node:path';
import type { Digest } from '../oci/digest.js';
import { formatReference } from '../oci/reference.js';
import { openSource, type TransportOptions } from '../transport/index.js';
import { parseDockerReference } from '../transport/docker.js';
import { parseLayoutReference } from '../transport/oci-layout.js';
import { parseTransportReference, type ImageSource } from '../transport/transport.js';
import { findSignatures, type Discovery } from './discover.js';
import { dockerSubject, layoutScopes, requirementsFor, type PolicySubject, type TrustPolicy } from './policy-file.js';
import { evaluateRequirements } from './verify.js';
import type { VerificationCache } from './cache.js';
import type { NotationPolicyFile } from './notation-files.js';
import { notationPolicyFor, notationRequirement } from './notation-policy.js';
import type {
  IdentityRule,
  ImageIdentity,
  KeylessTrust,
  PolicyDecision,
  TrustedKey,
  TrustRequirement,
} from './types.js';

/** Where an image reference points, for identity rules and policy scopes. */
export interface ImageLocation {
  /** The Docker reference (`host/repo:tag`, `host/repo@digest`) when the transport has one. */
  dockerReference?: string;
  subject: PolicySubject;
}

/** The Docker name and policy scopes of a transport reference (`docker://…`, `oci:DIR[:REF]`, …). */
export function locateImage(imageRef: string): ImageLocation {
  const { transport, rest } = parseTransportReference(imageRef);
  if (transport === 'docker') {
    const ref = parseDockerReference(rest);
    return { dockerReference: formatReference(ref), subject: dockerSubject(ref) };
  }
  if (transport === 'oci') {
    const { dir, ref } = parseLayoutReference(rest);
    return { subject: { transport: 'oci', scopes: layoutScopes(resolve(dir), ref) } };
  }
  return { subject: { transport, scopes: [] } };
}

/** What an image check found: the image, the signatures and the decision. */
export interface TrustCheck {
  image: ImageIdentity;
  discovery: Discovery;
  decision: PolicyDecision;
}

/**
 * Checks an already open source's image against requirements: discovery (I/O, bounded) then the
 * pure evaluation. This is what copy, sync, the cache and passthrough call before moving an image.
 */
export async function checkImageTrust(
  source: ImageSource,
  image: ImageIdentity,
  requirements: TrustRequirement[],
  opts: { cache?: VerificationCache; scope?: string } = {},
): Promise<TrustCheck> {
  const needsSignatures = requirements.some((r) => r.type === 'sigstoreSigned' || r.type === 'notationSigned');
  const discovery: Discovery = needsSignatures
    ? await findSignatures(source, image.digest)
    : { candidates: [], searched: [] };
  const decision = evaluateRequirements(image, discovery.candidates, requirements, {
    cache: opts.cache,
    searched: discovery.searched,
    scope: opts.scope,
  });
  return { image, discovery, decision };
}

/** What to verify an image against: keys and a rule, or a containers-policy.json. */
export interface VerifyImageOptions {
  keys?: TrustedKey[];
  /** Keyless signers that count (with or instead of keys): roots and identities. */
  keyless?: KeylessTrust;
  identityRule?: IdentityRule;
  policy?: TrustPolicy;
  /** notation's trustpolicy.json with its trust stores: adds a notation requirement for the image's name. */
  notation?: NotationPolicyFile;
  transport?: TransportOptions;
  cache?: VerificationCache;
}

/** The requirements `opts` give for an image: the policy's most specific scope, or one sigstoreSigned requirement from keys and rule. */
export function requirementsOf(
  location: ImageLocation,
  opts: VerifyImageOptions,
): { requirements: TrustRequirement[]; scope?: string } {
  const cosign = opts.policy || opts.keys?.length || opts.keyless;
  if (opts.notation && !cosign) return { requirements: [notationOf(location, opts.notation)] };
  const out = cosignRequirementsOf(location, opts);
  if (opts.notation) out.requirements = [...out.requirements, notationOf(location, opts.notation)];
  return out;
}

// notation scopes are `registry/repository`, without tag or digest.
function notationOf(location: ImageLocation, n: NotationPolicyFile): TrustRequirement {
  const name = location.dockerReference?.replace(/(@sha256:[0-9a-f]+|:[^/:@]+)$/, '') ?? '';
  return notationRequirement(notationPolicyFor(n.policies, name), (s) => n.stores.get(s)!, name || '(no name)');
}

function cosignRequirementsOf(
  location: ImageLocation,
  opts: VerifyImageOptions,
): { requirements: TrustRequirement[]; scope?: string } {
  if (opts.policy) {
    const { scope, requirements } = requirementsFor(opts.policy, location.subject);
    return { requirements, scope };
  }
  const req: TrustRequirement = {
    type: 'sigstoreSigned',
    keys: opts.keys ?? [],
    signedIdentity: opts.identityRule ?? { type: 'matchRepoDigestOrExact' },
  };
  if (opts.keyless) req.keyless = opts.keyless;
  return { requirements: [req] };
}

/** Opens `imageRef`, finds its signatures and checks them (`sluice verify`). */
export async function verifyImage(
  imageRef: string,
  opts: VerifyImageOptions,
): Promise<TrustCheck & { description: string }> {
  const location = locateImage(imageRef);
  const { requirements, scope } = requirementsOf(location, opts);
  const source = await openSource(imageRef, opts.transport);
  try {
    const top = await source.getManifest();
    const image: ImageIdentity = { digest: top.digest as Digest };
    if (location.dockerReference) image.dockerReference = location.dockerReference;
    const check = await checkImageTrust(source, image, requirements, { cache: opts.cache, scope });
    return { ...check, description: source.description };
  } finally {
    await source.close();
  }
}
