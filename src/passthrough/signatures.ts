import type { Digest } from '../oci/digest.js';
import { formatReference, type Reference } from '../oci/reference.js';
import {
  checkImageTrust,
  dockerSubject,
  evaluateRequirements,
  requirementsFor,
  type PolicyDecision,
  type TrustPolicy,
} from '../sign/index.js';
import type { ImageSource } from '../transport/transport.js';
import type { HostReference } from './decide.js';

/** What one set of requirements said about one registry digest of a host image. */
export interface GateVerdict {
  allowed: boolean;
  /** One line: which requirement, keys tried, what was found. */
  reason: string;
  decision?: PolicyDecision;
}

/**
 * One set of signature requirements passthrough honours: a config's `trust:` rules (place
 * `passthrough`) or a containers-policy.json. `applies` is cheap and pure; `check` looks at the
 * signatures a registry source shows for a digest.
 */
export interface SignatureGate {
  applies(ref: Reference): boolean;
  /** The verdict when the requirements need no signature at all (a `reject` scope), so no registry image is needed; undefined otherwise. */
  withoutSignatures?(ref: Reference): GateVerdict | undefined;
  check(source: ImageSource, ref: Reference, digest: Digest): Promise<GateVerdict>;
}

/** The part of the registry's `Trust` a gate needs (so passthrough does not depend on the registry). */
export interface TrustRules {
  ruleFor(repository: string, where: 'passthrough'): unknown;
  check(
    source: ImageSource,
    repository: string,
    where: 'passthrough',
    digest: Digest,
    dockerReference: string,
  ): Promise<GateVerdict>;
}

const nameOf = (ref: Reference): string => `${ref.registry}/${ref.repository}`;

/** A gate from a config's `trust:` rules: only the rules that list `passthrough` apply. */
export function configGate(trust: TrustRules): SignatureGate {
  return {
    applies: (ref) => trust.ruleFor(nameOf(ref), 'passthrough') !== undefined,
    check: (source, ref, digest) => trust.check(source, nameOf(ref), 'passthrough', digest, formatReference(ref)),
  };
}

/** A gate from a containers-policy.json: the most specific `docker` scope of the host name decides; insecureAcceptAnything alone needs no look. */
export function policyGate(policy: TrustPolicy, file: string): SignatureGate {
  const lookup = (ref: Reference) => requirementsFor(policy, dockerSubject(ref));
  return {
    applies(ref) {
      // An empty list refuses everything, so it applies too.
      const r = lookup(ref).requirements;
      return r.length === 0 || r.some((x) => x.type !== 'insecureAcceptAnything');
    },
    withoutSignatures(ref) {
      const { scope, requirements } = lookup(ref);
      if (requirements.some((r) => r.type === 'sigstoreSigned')) return undefined;
      // Nothing here looks at signatures, so the digest stands in only for the message.
      const decision = evaluateRequirements(
        { digest: 'sha256:' as Digest, dockerReference: formatReference(ref) },
        [],
        requirements,
        { scope },
      );
      return { allowed: decision.allowed, reason: `${file}: ${decision.summary}`, decision };
    },
    async check(source, ref, digest) {
      const { scope, requirements } = lookup(ref);
      const { decision } = await checkImageTrust(
        source,
        { digest, dockerReference: formatReference(ref) },
        requirements,
        { scope },
      );
      return { allowed: decision.allowed, reason: `${file}: ${decision.summary}`, decision };
    },
  };
}

/** What the signature check found for one host reference. */
export interface SignatureOutcome {
  allowed: boolean;
  reason: string;
  /** Each registry digest looked at, with what each gate said about it. */
  checked: { digest: string; allowed: boolean; reason: string; decision?: PolicyDecision }[];
}

/** Opens the registry image a RepoDigest names, where its signatures are looked up. */
export type OpenRegistryImage = (registry: string, repository: string, digest: Digest) => ImageSource;

/**
 * Checks a host reference against every gate that applies to its name; undefined when none does.
 * The host daemon keeps no signatures, so they are looked up at the registry the image came from,
 * under the digests the daemon recorded for the reference's own repository (its RepoDigests): the
 * daemon pulled (or pushed) exactly that content by that digest. A name with no such digest was
 * built, loaded or re-tagged locally, and nothing ties it to any signature. One digest satisfying a
 * gate is enough; every gate must be satisfied.
 */
export async function checkSignatures(
  ref: HostReference,
  gates: SignatureGate[],
  open: OpenRegistryImage,
): Promise<SignatureOutcome | undefined> {
  const applying = gates.filter((g) => g.applies(ref.reference));
  if (applying.length === 0) return undefined;
  const name = nameOf(ref.reference);
  // Requirements that look at no signature (reject) answer for themselves, digest or not.
  const direct = applying.map((g) => g.withoutSignatures?.(ref.reference));
  const refusedOutright = direct.find((v) => v && !v.allowed);
  if (refusedOutright) return { allowed: false, reason: `refused: ${refusedOutright.reason}`, checked: [] };
  if (direct.every((v) => v?.allowed))
    return { allowed: true, reason: direct.map((v) => v!.reason).join('; '), checked: [] };
  if (ref.digests.length === 0) {
    return {
      allowed: false,
      reason: `signature required, but the host has no registry digest for ${name} (built, loaded or re-tagged locally), so there is no registry image whose signatures could be checked`,
      checked: [],
    };
  }
  const checked: SignatureOutcome['checked'] = [];
  const reasons: string[] = [];
  for (const [i, gate] of applying.entries()) {
    if (direct[i]) continue;
    let ok: GateVerdict | undefined;
    const refused: string[] = [];
    for (const digest of ref.digests as Digest[]) {
      const source = open(ref.reference.registry, ref.reference.repository, digest);
      let v: GateVerdict;
      try {
        v = await gate.check(source, ref.reference, digest);
      } catch (e) {
        v = {
          allowed: false,
          reason: `signatures of ${name}@${digest} could not be read from ${ref.reference.registry}: ${(e as Error).message}`,
        };
      } finally {
        await source.close().catch(() => undefined);
      }
      checked.push({ digest, allowed: v.allowed, reason: v.reason, ...(v.decision ? { decision: v.decision } : {}) });
      if (v.allowed) {
        ok = v;
        break;
      }
      refused.push(ref.digests.length > 1 ? `${digest}: ${v.reason}` : v.reason);
    }
    if (!ok) return { allowed: false, reason: `not signed as required: ${refused.join(' | ')}`, checked };
    reasons.push(ok.reason);
  }
  return { allowed: true, reason: `signed: ${reasons.join('; ')}`, checked };
}
