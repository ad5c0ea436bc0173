import { formatReference, parseReference, type Reference } from '../oci/reference.js';
import type { IdentityRule } from './types.js';

/** Thrown for an identity rule that containers-policy.json would refuse. */
export class IdentityRuleError extends Error {}

/** The outcome of matching a signed name against an image's name. */
export interface IdentityMatch {
  ok: boolean;
  reason: string;
}

// Go's reference.ParseNormalizedNamed, as containers/image uses it: `busybox` means docker.io/library/busybox.
function normalized(text: string): Reference | undefined {
  try {
    return parseReference(text);
  } catch {
    return undefined;
  }
}

// Go's reference.ParseNamed: only the fully expanded spelling is a name (`docker.io/library/busybox`, not `busybox`).
function strict(text: string): Reference | undefined {
  const r = normalized(text);
  return r && formatReference(r) === text ? r : undefined;
}

const nameOf = (r: Reference): string => `${r.registry}/${r.repository}`;
const isNameOnly = (r: Reference): boolean => !r.tag && !r.digest;

// distribution/reference's DomainRegexp and NameRegexp, which containers/image validates prefixes with.
const DOMAIN = String.raw`(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?`;
const PATH_COMPONENT = String.raw`[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`;
const IS_DOMAIN = new RegExp(`^${DOMAIN}$`);
const STARTS_WITH_DOMAIN = new RegExp(`^${DOMAIN}/`);
const IS_NAME = new RegExp(`^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);

/**
 * Checks a remapIdentity prefix as containers/image's validateIdentityRemappingPrefix does: a host[:port], or
 * a name that starts with a host (`docker.io/konard`, `docker.io/library/busybox`). The prefix is compared
 * with the image's name as written out in full, so it is taken as given, never expanded (`docker.io/konard`
 * stays that; it is not `docker.io/library/konard`).
 */
function checkPrefix(prefix: string, field: string): void {
  if (IS_DOMAIN.test(prefix) || (IS_NAME.test(prefix) && STARTS_WITH_DOMAIN.test(prefix))) return;
  throw new IdentityRuleError(
    `remapIdentity ${field} "${prefix}" must be a host[:port] or a name that starts with one (such as quay.io or docker.io/library), without tag or digest`,
  );
}

/** Validates a rule's fields (a policy file or the command line gave them); returns it unchanged. */
export function checkIdentityRule(rule: IdentityRule): IdentityRule {
  switch (rule.type) {
    case 'matchExact':
    case 'matchRepoDigestOrExact':
    case 'matchRepository':
      return rule;
    case 'exactReference': {
      const r = typeof rule.dockerReference === 'string' ? normalized(rule.dockerReference) : undefined;
      if (!r || isNameOnly(r))
        throw new IdentityRuleError(
          `exactReference needs "dockerReference" with a tag or digest, got ${JSON.stringify(rule.dockerReference)}`,
        );
      return rule;
    }
    case 'exactRepository': {
      if (typeof rule.dockerRepository !== 'string' || !normalized(rule.dockerRepository)) {
        throw new IdentityRuleError(
          `exactRepository needs "dockerRepository", a repository name, got ${JSON.stringify(rule.dockerRepository)}`,
        );
      }
      return rule;
    }
    case 'remapIdentity':
      if (typeof rule.prefix !== 'string' || typeof rule.signedPrefix !== 'string')
        throw new IdentityRuleError('remapIdentity needs "prefix" and "signedPrefix"');
      checkPrefix(rule.prefix, 'prefix');
      checkPrefix(rule.signedPrefix, 'signedPrefix');
      return rule;
    default:
      throw new IdentityRuleError(
        `unknown signedIdentity type ${JSON.stringify((rule as { type: unknown }).type)}: expected matchExact, matchRepoDigestOrExact, matchRepository, exactReference, exactRepository or remapIdentity`,
      );
  }
}

/** Reads a rule from the command line: `matchRepository`, `exactReference:REF`, `exactRepository:REPO`, `remapIdentity:PREFIX=SIGNEDPREFIX`. */
export function parseIdentityRule(text: string): IdentityRule {
  const i = text.indexOf(':');
  const type = i < 0 ? text : text.slice(0, i);
  const arg = i < 0 ? '' : text.slice(i + 1);
  const need = (what: string): string => {
    if (!arg) throw new IdentityRuleError(`${type} needs ${what}: ${type}:${what.toUpperCase().replace(/ /g, '_')}`);
    return arg;
  };
  switch (type) {
    case 'matchExact':
    case 'matchRepoDigestOrExact':
    case 'matchRepository':
      if (arg) throw new IdentityRuleError(`${type} takes no value`);
      return { type };
    case 'exactReference':
      return checkIdentityRule({ type, dockerReference: need('a reference') });
    case 'exactRepository':
      return checkIdentityRule({ type, dockerRepository: need('a repository') });
    case 'remapIdentity': {
      const v = need('prefix=signedPrefix');
      const eq = v.indexOf('=');
      if (eq < 0) throw new IdentityRuleError('remapIdentity is written remapIdentity:PREFIX=SIGNEDPREFIX');
      return checkIdentityRule({ type, prefix: v.slice(0, eq), signedPrefix: v.slice(eq + 1) });
    }
    default:
      return checkIdentityRule({ type } as IdentityRule);
  }
}

/** The rule in the words of containers-policy.json, for messages. */
export function describeRule(rule: IdentityRule): string {
  switch (rule.type) {
    case 'exactReference':
      return `exactReference ${rule.dockerReference}`;
    case 'exactRepository':
      return `exactRepository ${rule.dockerRepository}`;
    case 'remapIdentity':
      return `remapIdentity ${rule.prefix} → ${rule.signedPrefix}`;
    default:
      return rule.type;
  }
}

// containers/image's matchRepoDigestOrExactReferenceValues.
function repoDigestOrExact(intended: Reference, signed: Reference, signedText: string, what: string): IdentityMatch {
  if (isNameOnly(signed)) {
    return {
      ok: false,
      reason: `signed for ${signedText} with neither tag nor digest (as cosign signs); ${what} needs a tag or digest in the signature: matchRepository or exactRepository accept it`,
    };
  }
  if (intended.tag) {
    const ok = formatReference(signed) === formatReference(intended);
    return ok
      ? { ok, reason: `signed for ${formatReference(signed)}, exactly this image's name` }
      : {
          ok,
          reason: `signed for ${formatReference(signed)}, this is ${formatReference(intended)} (${what}: an image named by tag needs a signature for exactly that name)`,
        };
  }
  if (intended.digest) {
    const ok = nameOf(signed) === nameOf(intended);
    return ok
      ? { ok, reason: `signed for ${formatReference(signed)}, the same repository as ${formatReference(intended)}` }
      : {
          ok,
          reason: `signed for ${formatReference(signed)}, this is ${formatReference(intended)} (another repository)`,
        };
  }
  return { ok: false, reason: `this image's name ${formatReference(intended)} has neither tag nor digest` };
}

// containers/image's refMatchesPrefix: the prefix ends at a name boundary (`/`, or the `:` of a tag or port, or `@`).
function matchesPrefix(ref: string, prefix: string): boolean {
  if (ref.length === prefix.length) return ref === prefix;
  return ref.length > prefix.length && ref.startsWith(prefix) && '/:@'.includes(ref[prefix.length]!);
}

// containers/image's remapReferencePrefix: on the full string form of the name, then parsed strictly (ParseNamed).
function remapped(rule: Extract<IdentityRule, { type: 'remapIdentity' }>, intended: Reference): Reference | undefined {
  const text = formatReference(intended);
  if (!matchesPrefix(text, rule.prefix)) return intended;
  return strict(rule.signedPrefix + text.slice(rule.prefix.length));
}

/**
 * Whether a signature's `docker-reference` satisfies `rule` for an image known as `imageReference`
 * (undefined for places without registry names, such as an OCI layout). Same semantics as
 * containers/image's signature/policy_reference_match.go; pure.
 */
export function matchIdentity(
  rule: IdentityRule,
  signedReference: string | undefined,
  imageReference: string | undefined,
): IdentityMatch {
  if (signedReference === undefined) {
    return {
      ok: false,
      reason: 'the signature names no image (cosign 3 bundles sign only the digest), so no identity rule can accept it',
    };
  }
  const signed = normalized(signedReference);
  if (!signed) return { ok: false, reason: `signed for "${signedReference}", which is not a valid image name` };
  const signedText = formatReference(signed);
  const needsImageName =
    rule.type === 'matchExact' ||
    rule.type === 'matchRepoDigestOrExact' ||
    rule.type === 'matchRepository' ||
    rule.type === 'remapIdentity';
  let intended: Reference | undefined;
  if (needsImageName) {
    intended = imageReference === undefined ? undefined : normalized(imageReference);
    if (!intended) {
      return {
        ok: false,
        reason: `${rule.type} compares with the image's registry name, and this image has none (an OCI layout): use exactReference or exactRepository`,
      };
    }
  }
  switch (rule.type) {
    case 'matchExact': {
      if (isNameOnly(intended!) || isNameOnly(signed))
        return { ok: false, reason: `signed for ${signedText}; matchExact needs a tag or digest on both names` };
      const ok = signedText === formatReference(intended!);
      return {
        ok,
        reason: ok
          ? `signed for ${signedText}, exactly this image's name`
          : `signed for ${signedText}, this is ${formatReference(intended!)} (matchExact)`,
      };
    }
    case 'matchRepoDigestOrExact':
      return repoDigestOrExact(intended!, signed, signedText, 'matchRepoDigestOrExact');
    case 'matchRepository': {
      const ok = nameOf(signed) === nameOf(intended!);
      return {
        ok,
        reason: ok
          ? `signed for ${signedText}, the same repository`
          : `signed for ${nameOf(signed)}, this is ${nameOf(intended!)} (matchRepository)`,
      };
    }
    case 'exactReference': {
      const want = normalized(rule.dockerReference);
      if (!want || isNameOnly(want) || isNameOnly(signed))
        return { ok: false, reason: `signed for ${signedText}; exactReference needs a tag or digest on both names` };
      const ok = signedText === formatReference(want);
      return {
        ok,
        reason: ok
          ? `signed for ${signedText}, the name the rule requires`
          : `signed for ${signedText}, the rule requires ${formatReference(want)} (exactReference)`,
      };
    }
    case 'exactRepository': {
      const want = normalized(rule.dockerRepository);
      const ok = !!want && nameOf(signed) === nameOf(want);
      return {
        ok,
        reason: ok
          ? `signed for ${signedText}, in the repository the rule requires`
          : `signed for ${nameOf(signed)}, the rule requires repository ${want ? nameOf(want) : rule.dockerRepository} (exactRepository)`,
      };
    }
    case 'remapIdentity': {
      const r = remapped(rule, intended!);
      if (!r)
        return {
          ok: false,
          reason: `this image's name ${formatReference(intended!)} cannot be remapped from ${rule.prefix} to ${rule.signedPrefix}`,
        };
      const m = repoDigestOrExact(r, signed, signedText, 'remapIdentity');
      const via =
        r === intended
          ? `(${rule.prefix} does not cover ${nameOf(intended!)}, so it is not remapped)`
          : `(remapped from ${formatReference(intended!)})`;
      if (m.ok || isNameOnly(signed)) return { ok: m.ok, reason: `${m.reason} ${via}` };
      return { ok: false, reason: `signed for ${signedText}, this is ${formatReference(r)} ${via}` };
    }
  }
}
