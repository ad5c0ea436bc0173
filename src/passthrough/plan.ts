import { quoteName } from '../oci/name.js';
import { formatReference, parseReference } from '../oci/reference.js';
import { compilePatterns, PolicyError } from '../policy/patterns.js';
import type { DaemonImage } from '../transport/docker-engine.js';
import { parseTaggedName } from '../transport/docker-names.js';
import {
  decide,
  matchingPattern,
  type Decision,
  type DecisionKind,
  type Filters,
  type HostReference,
  type Publicness,
  type PublicQuery,
} from './decide.js';
import { isConcrete } from './settings.js';
import type { SignatureOutcome } from './signatures.js';

/** One row of the plan: a host reference and what passthrough does with it. */
export interface PlanEntry {
  reference: string;
  image: string;
  decision: DecisionKind;
  reason: string;
  /** What the signature check found, when signatures are required for this name. */
  signatures?: SignatureOutcome;
}

/** What would be copied and skipped, and what the operator should hear about. */
export interface Plan {
  entries: PlanEntry[];
  warnings: string[];
}

/** The host references of a daemon's images: every RepoTag, with its own repository's RepoDigests. */
export function hostReferences(images: DaemonImage[]): { refs: HostReference[]; warnings: string[] } {
  const refs: HostReference[] = [];
  const warnings: string[] = [];
  for (const image of images) {
    const digests = new Map<string, string[]>();
    for (const rd of image.repoDigests) {
      try {
        const r = parseReference(rd);
        if (!r.digest) continue;
        const key = `${r.registry}/${r.repository}`;
        digests.set(key, [...(digests.get(key) ?? []), r.digest]);
      } catch {
        // a RepoDigest Sluice cannot parse proves nothing about any name
      }
    }
    for (const text of image.repoTags) {
      let reference: ReturnType<typeof parseTaggedName>;
      try {
        reference = parseTaggedName(text);
      } catch (e) {
        warnings.push(
          `host image ${image.id} has a tag Sluice cannot read (${quoteName(text)}): ${(e as Error).message}`,
        );
        continue;
      }
      refs.push({
        text,
        reference,
        imageId: image.id,
        digests: digests.get(`${reference.registry}/${reference.repository}`) ?? [],
      });
    }
  }
  refs.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
  return { refs, warnings };
}

/** The image ID the target has under each normalized tag. */
export function targetTags(images: DaemonImage[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const image of images) {
    for (const t of image.repoTags) {
      try {
        out.set(formatReference(parseTaggedName(t)), image.id);
      } catch {
        // a tag the host cannot have either
      }
    }
  }
  return out;
}

/** Compiles the image entries with the access rules' pattern engine; a bad entry is a PolicyError naming it. */
export function compileImagePatterns(images: string[]): Filters['patterns'] {
  try {
    return compilePatterns(images, {});
  } catch (e) {
    throw new PolicyError(`image pattern: ${(e as Error).message}`);
  }
}

/**
 * Decides every host reference. Registry questions are asked only for references that pass the name
 * and registry filters and are not already in the target, all at once (the checker limits and caches).
 * Signatures (`signed`, when requirements are configured) are checked last, for what would be copied.
 */
export async function makePlan(
  host: DaemonImage[],
  target: DaemonImage[],
  filters: Filters,
  images: string[],
  isPublic: (q: PublicQuery) => Promise<Publicness>,
  signed?: (r: HostReference) => Promise<SignatureOutcome | undefined>,
): Promise<Plan> {
  const { refs, warnings } = hostReferences(host);
  const inTarget = targetTags(target);
  const present = (r: HostReference) => inTarget.get(formatReference(r.reference)) === r.imageId;
  const decisions: Decision[] = await Promise.all(
    refs.map(async (r) => {
      const v = decide(r, filters, present(r));
      if (!('ask' in v)) return v;
      const answered = decide(r, filters, false, await isPublic(v.ask));
      if ('ask' in answered) throw new Error(`internal: ${r.text} still needs a registry answer`);
      return answered;
    }),
  );
  const outcomes = await Promise.all(
    refs.map((r, i) => (signed && decisions[i]!.kind === 'copy' ? signed(r) : undefined)),
  );
  outcomes.forEach((o, i) => {
    if (o && !o.allowed) decisions[i] = { kind: 'skip: not signed', reason: o.reason };
    else if (o) decisions[i] = { ...decisions[i]!, reason: `${decisions[i]!.reason}; ${o.reason}` };
  });
  const entries = refs.map((r, i): PlanEntry => {
    const e: PlanEntry = {
      reference: r.text,
      image: r.imageId,
      decision: decisions[i]!.kind,
      reason: decisions[i]!.reason,
    };
    if (outcomes[i]) e.signatures = outcomes[i];
    return e;
  });
  // An exact entry is a request for that image: say so when it cannot be honoured.
  for (const entry of images.filter(isConcrete)) {
    const [p] = compileImagePatterns([entry]);
    const hits = refs.map((r, i) => ({ r, d: decisions[i]! })).filter(({ r }) => matchingPattern(r, [p!]));
    if (hits.length === 0) {
      warnings.push(`${entry} is not on the host daemon: the inner daemon will pull it when it is first used`);
      continue;
    }
    for (const { r, d } of hits) {
      if (d.kind !== 'copy' && d.kind !== 'skip: already present')
        warnings.push(`${entry} is on the host as ${r.text} but is not copied: ${d.kind} (${d.reason})`);
    }
  }
  return { entries, warnings };
}
