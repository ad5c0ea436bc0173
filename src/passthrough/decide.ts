import type { Reference } from '../oci/reference.js';
import { decideFlow, type FlowPolicy } from '../policy/flows.js';
import type { Pattern } from '../policy/patterns.js';
import { ANONYMOUS, type Target } from '../policy/types.js';

/** What passthrough copies: nothing, images proven public, or every tagged image. */
export type Mode = 'off' | 'public' | 'all';

/** The decision for one host reference, as the plan prints it. */
export type DecisionKind =
  | 'copy'
  | 'skip: already present'
  | 'skip: not public'
  | 'skip: registry not allowed'
  | 'skip: no pattern matches'
  | 'skip: not approved'
  | 'skip: not signed';

/** One tagged reference on the host daemon, with what is known about it there. */
export interface HostReference {
  /** The RepoTag as the daemon lists it (`busybox:1`, `127.0.0.1:5000/team/app:1`). */
  text: string;
  /** The same, normalized (`docker.io/library/busybox:1`). */
  reference: Reference & { tag: string };
  /** The image ID (config digest). */
  imageId: string;
  /** RepoDigests of this reference's own repository: the digests it was pulled or pushed by. */
  digests: string[];
}

/** What passthrough filters by (mode `off` never gets this far). */
export interface Filters {
  mode: 'public' | 'all';
  /** Registry hosts whose images `public` may copy (lower case, Docker Hub as `docker.io`). */
  registries: string[];
  /** Image patterns; empty means no name filter. */
  patterns: Pattern[];
  /** A config's `flows:`, judged as the pull-through cache judges them; absent when the config has none. */
  flows?: FlowPolicy;
}

/** Whether an anonymous client may pull a digest, and how that was found out. */
export interface Publicness {
  public: boolean;
  reason: string;
}

/** A question for the registry: may an anonymous client pull one of these digests of this repository? */
export interface PublicQuery {
  registry: string;
  repository: string;
  digests: string[];
}

/** A decision with its reason (and the image pattern that let the name through, if any). */
export interface Decision {
  kind: DecisionKind;
  reason: string;
  pattern?: string;
}

/** A decision, or the registry question that must be answered first. */
export type Verdict = Decision | { ask: PublicQuery };

/** The first pattern that matches the reference (by name and tag, or by one of its registry digests). */
export function matchingPattern(ref: HostReference, patterns: Pattern[]): Pattern | undefined {
  const base: Target = {
    repository: `${ref.reference.registry}/${ref.reference.repository}`,
    // The pattern engine matches Docker Hub names in every spelling, other registries' names only in full.
    tag: ref.reference.tag,
  };
  // A pattern written with `@digest` speaks about the digests the name was pulled by.
  const targets: Target[] = ref.digests.length > 0 ? ref.digests.map((digest) => ({ ...base, digest })) : [base];
  return patterns.find((p) => targets.some((t) => p.matches(t, ANONYMOUS)));
}

/**
 * Decides one host reference. Cheap filters come first (name patterns, flow rules, registry allowlist,
 * already in the target), so the registry is asked only about what would otherwise be copied. Under `public`, a
 * reference is judged by its own repository's digests: a public image re-tagged under another name has
 * none there, and a RepoDigest alone proves nothing (a private Docker Hub repository has one too), so
 * the answer comes from an anonymous request at the registry (`publicness`, asked for with `ask`).
 */
export function decide(ref: HostReference, filters: Filters, present: boolean, publicness?: Publicness): Verdict {
  let pattern: string | undefined;
  if (filters.patterns.length > 0) {
    const p = matchingPattern(ref, filters.patterns);
    if (!p)
      return {
        kind: 'skip: no pattern matches',
        reason: `matches none of the image patterns (${filters.patterns.map((x) => x.text).join(' ')})`,
      };
    pattern = p.text;
  }
  const withPattern = (d: Decision): Decision => (pattern ? { ...d, pattern } : d);
  const registry = ref.reference.registry.toLowerCase();
  const name = `${registry}/${ref.reference.repository}`;
  let by = pattern ? ` (image pattern ${pattern})` : '';
  if (filters.flows) {
    // The cache's own answer and words: an image the cache would refuse is not seeded either.
    const flow = decideFlow(filters.flows, { repository: name, tag: ref.reference.tag });
    if (!flow.allowed) return withPattern({ kind: 'skip: not approved', reason: flow.reason });
    by += `; ${flow.reason}`;
  }
  if (filters.mode === 'public' && !filters.registries.includes(registry)) {
    return withPattern({
      kind: 'skip: registry not allowed',
      reason: `registry ${registry} is not in the allowlist (${filters.registries.join(' ') || 'empty'})`,
    });
  }
  if (present)
    return withPattern({
      kind: 'skip: already present',
      reason: `the target has ${ref.text} as the same image ${shortId(ref.imageId)}`,
    });
  if (filters.mode === 'all') return withPattern({ kind: 'copy', reason: `mode all copies every tagged image${by}` });
  if (ref.digests.length === 0) {
    return withPattern({
      kind: 'skip: not public',
      reason: `no registry digest for ${name} on the host: built, loaded or re-tagged locally, so nothing shows it can be pulled anonymously`,
    });
  }
  if (!publicness) return { ask: { registry, repository: ref.reference.repository, digests: ref.digests } };
  if (!publicness.public) return withPattern({ kind: 'skip: not public', reason: publicness.reason });
  return withPattern({ kind: 'copy', reason: `${publicness.reason}${by}` });
}

/** `sha256:0123456789ab`, as docker prints IDs. */
export function shortId(id: string): string {
  return id.slice(0, 'sha256:'.length + 12);
}
