import type { Digest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/name.js';
import type { ManifestFacts, RepositoryFacts, StorageFacts } from './facts.js';

/** Why a tag that is in use goes: a retention rule, or cache eviction. */
export type LifecycleCause = 'retention' | 'eviction';

/** One object the collector would delete, and why. Every object is keyed by the digest whose grace governs it. */
export type Garbage =
  | { kind: 'blob'; digest: Digest; reason: string }
  | { kind: 'manifest'; digest: Digest; repository: RepositoryName; subject?: Digest; reason: string }
  | { kind: 'tag'; digest: Digest; repository: RepositoryName; tag: string; reason: string; cause?: LifecycleCause }
  | { kind: 'layer-link'; digest: Digest; repository: RepositoryName; reason: string };

/** What the mark decided: the garbage, or why nothing may be deleted this time. */
export interface Plan {
  garbage: Garbage[];
  /** Digests something live needs. */
  live: Set<Digest>;
  /** Set when the plan cannot be trusted (a live manifest cannot be read): then nothing is deleted. */
  blocked?: string;
}

/** `sha256-<hex>.sig` (cosign), `.att`, `.sbom`, and the bare `sha256-<hex>` of the referrers tag schema. */
const ARTIFACT_TAG = /^(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})(?:\.(?:sig|att|sbom))?$/;

/** The subject digest an artifact tag belongs to, or null for an ordinary tag. */
export function artifactTagSubject(tag: string): Digest | null {
  const m = ARTIFACT_TAG.exec(tag);
  return m ? (`${m[1]}:${m[2]}` as Digest) : null;
}

function isReadable(f: unknown): f is ManifestFacts {
  return f !== undefined && !('unreadable' in (f as object));
}

/**
 * The live revisions of one repository. Roots are tag targets (artifact tags only through their subject
 * under delete-untagged) and, without delete-untagged, every revision that names no subject; from the
 * roots, index children, referrers of live subjects and artifact tags of live subjects are live too.
 */
export function liveRevisions(repo: RepositoryFacts, facts: StorageFacts, deleteUntagged: boolean): Set<Digest> {
  const revisions = new Set(repo.revisions);
  const referrersOf = new Map<Digest, Digest[]>();
  const artifactsOf = new Map<Digest, Digest[]>();
  // Under retention, what stays untagged is decided there; artifact tags then follow their subject.
  const followSubject = deleteUntagged || repo.retained !== undefined;
  const roots: Digest[] = [...(repo.retained?.roots ?? [])];
  for (const d of repo.revisions) {
    const f = facts.manifests.get(d);
    const subject = isReadable(f) ? f.subject : undefined;
    if (subject) referrersOf.set(subject, [...(referrersOf.get(subject) ?? []), d]);
    else if (!followSubject) roots.push(d);
  }
  for (const [tag, d] of repo.tags) {
    const subject = artifactTagSubject(tag);
    if (subject && followSubject) artifactsOf.set(subject, [...(artifactsOf.get(subject) ?? []), d]);
    else roots.push(d);
  }
  const live = new Set<Digest>();
  const work = roots.filter((d) => revisions.has(d));
  while (work.length > 0) {
    const d = work.pop()!;
    if (live.has(d)) continue;
    live.add(d);
    const f = facts.manifests.get(d);
    const next = [...(isReadable(f) ? f.children : []), ...(referrersOf.get(d) ?? []), ...(artifactsOf.get(d) ?? [])];
    for (const n of next) if (revisions.has(n) && !live.has(n)) work.push(n);
  }
  return live;
}

/** Why a revision is garbage, in words for the plan. */
function manifestReason(f: ManifestFacts | undefined, live: Set<Digest>): string {
  if (f?.subject && !live.has(f.subject)) return `referrer of ${f.subject}, which is gone`;
  return 'no tag, index or live subject refers to it (delete-untagged)';
}

/**
 * Judges the storage: what is live and what is garbage, with a reason per object. Pure: the same facts
 * always give the same plan, so `sluice gc --dry-run` shows exactly what a sweep would act on.
 */
export function planCollection(facts: StorageFacts, options: { deleteUntagged: boolean }): Plan {
  const garbage: Garbage[] = [];
  const live = new Set<Digest>();
  let blocked: string | undefined;
  const linkedFrom = new Map<Digest, RepositoryName[]>();
  for (const repo of facts.repositories) {
    const alive = liveRevisions(repo, facts, options.deleteUntagged);
    const present = new Set(repo.revisions);
    for (const l of repo.layers) linkedFrom.set(l, [...(linkedFrom.get(l) ?? []), repo.name]);
    for (const d of alive) {
      live.add(d);
      const f = facts.manifests.get(d);
      if (f === undefined) continue;
      if (!isReadable(f)) {
        blocked ??= `manifest ${d} of repository "${repo.name}" cannot be read (${f.unreadable}): nothing is deleted`;
        continue;
      }
      for (const b of f.blobs) live.add(b);
    }
    for (const d of repo.revisions) {
      if (alive.has(d)) continue;
      const f = facts.manifests.get(d);
      const readable = isReadable(f) ? f : undefined;
      const reason = (!readable?.subject && repo.retained?.reasons.get(d)) || manifestReason(readable, alive);
      const entry: Garbage = { kind: 'manifest', digest: d, repository: repo.name, reason };
      if (readable?.subject) entry.subject = readable.subject;
      garbage.push(entry);
    }
    for (const [tag, d] of repo.tags) {
      const subject = artifactTagSubject(tag);
      if (alive.has(d) || !present.has(d)) continue;
      garbage.push({
        kind: 'tag',
        digest: d,
        repository: repo.name,
        tag,
        reason: `artifact tag of ${subject ?? d}, which is gone`,
      });
    }
  }
  for (const b of facts.blobs) {
    if (live.has(b)) continue;
    garbage.push({ kind: 'blob', digest: b, reason: 'no live manifest refers to it' });
    for (const repository of linkedFrom.get(b) ?? []) {
      garbage.push({ kind: 'layer-link', digest: b, repository, reason: `link to blob ${b}, which goes` });
    }
  }
  const plan: Plan = { garbage, live };
  if (blocked) plan.blocked = blocked;
  return plan;
}
