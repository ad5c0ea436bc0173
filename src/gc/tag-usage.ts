import type { Digest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/name.js';
import type { ManifestFacts, RepositoryFacts, StorageFacts } from './facts.js';
import { liveRevisions } from './plan.js';

/** The bytes one tag names, and what deleting it would free. */
export interface TagUsage {
  repository: string;
  tag: string;
  digest: Digest;
  /** Its manifest, the children of an index, and their config and layers. */
  bytes: number;
  /** What no other live manifest of any repository uses once the tag is gone: freed by the next collections. */
  frees: number;
}

function readable(facts: StorageFacts, d: Digest): ManifestFacts | undefined {
  const f = facts.manifests.get(d);
  return f && !('unreadable' in f) ? f : undefined;
}

/** Live manifests of a repository and every blob they name. */
function liveDigests(repo: RepositoryFacts, facts: StorageFacts, deleteUntagged: boolean): Set<Digest> {
  const out = new Set<Digest>();
  for (const d of liveRevisions(repo, facts, deleteUntagged)) {
    out.add(d);
    for (const b of readable(facts, d)?.blobs ?? []) out.add(b);
  }
  return out;
}

/** A manifest, its index children (those this repository holds) and their blobs. */
function namedBy(repo: RepositoryFacts, facts: StorageFacts, root: Digest): Set<Digest> {
  const revisions = new Set(repo.revisions);
  const out = new Set<Digest>();
  const work = [root];
  while (work.length > 0) {
    const d = work.pop()!;
    if (out.has(d) || !revisions.has(d)) continue;
    out.add(d);
    const f = readable(facts, d);
    for (const b of f?.blobs ?? []) out.add(b);
    work.push(...(f?.children ?? []));
  }
  return out;
}

/**
 * The repository as it would be with `tag` deleted. With delete-untagged the collector takes the rest; without,
 * untagged manifests stay (Distribution's rule), so the manifest the tag named is taken as deleted with it
 * (`DELETE /v2/<name>/manifests/<digest>`) unless another tag, an index or a live subject still needs it.
 */
function withoutTag(repo: RepositoryFacts, facts: StorageFacts, tag: string, deleteUntagged: boolean): RepositoryFacts {
  const tags = new Map(repo.tags);
  const d = tags.get(tag)!;
  tags.delete(tag);
  const untagged = { ...repo, tags };
  if (deleteUntagged || liveRevisions(untagged, facts, true).has(d)) return untagged;
  return { ...untagged, revisions: repo.revisions.filter((r) => r !== d) };
}

/**
 * Per tag of one repository: the bytes it names and what deleting that one tag would free (blobs and manifests
 * no other live manifest of any repository uses, its referrers included). Pure; sizes come from the caller.
 */
export function tagUsageOf(
  facts: StorageFacts,
  sizes: Map<Digest, number>,
  repository: RepositoryName,
  options: { deleteUntagged: boolean },
): TagUsage[] {
  const repo = facts.repositories.find((r) => r.name === repository);
  if (!repo) return [];
  const others = new Set<Digest>();
  for (const r of facts.repositories)
    if (r !== repo) for (const d of liveDigests(r, facts, options.deleteUntagged)) others.add(d);
  const before = liveDigests(repo, facts, options.deleteUntagged);
  const size = (ds: Iterable<Digest>): number => [...ds].reduce((n, d) => n + (sizes.get(d) ?? 0), 0);
  return [...repo.tags]
    .map(([tag, digest]) => {
      const after = liveDigests(withoutTag(repo, facts, tag, options.deleteUntagged), facts, options.deleteUntagged);
      const freed = [...before].filter((d) => !after.has(d) && !others.has(d));
      return {
        repository: repository as string,
        tag,
        digest,
        bytes: size(namedBy(repo, facts, digest)),
        frees: size(freed),
      };
    })
    .sort((a, b) => b.frees - a.frees || b.bytes - a.bytes || a.tag.localeCompare(b.tag));
}
