import type { Digest } from '../oci/digest.js';
import type { ManifestFacts, StorageFacts } from './facts.js';
import { liveRevisions } from './plan.js';

/** The bytes one repository uses. */
export interface RepositoryUsage {
  repository: string;
  /** Every manifest and blob its live images use. */
  bytes: number;
  /** What only this repository uses: what deleting it would free. */
  exclusive: number;
  /** What other repositories use too. */
  shared: number;
}

/**
 * Bytes per repository from what the collector's mark read: a repository uses its live manifests (as the
 * collector sees them, so deleting the repository frees exactly its exclusive bytes at the next collection)
 * and their blobs. Pure; sizes come from the caller.
 */
export function usageOf(
  facts: StorageFacts,
  sizes: Map<Digest, number>,
  options: { deleteUntagged: boolean },
): RepositoryUsage[] {
  const uses = facts.repositories.map((repo) => {
    const digests = new Set<Digest>();
    for (const d of liveRevisions(repo, facts, options.deleteUntagged)) {
      digests.add(d);
      const f = facts.manifests.get(d);
      if (f && !('unreadable' in f)) for (const b of (f as ManifestFacts).blobs) digests.add(b);
    }
    return { repository: repo.name as string, digests };
  });
  const users = new Map<Digest, number>();
  for (const u of uses) for (const d of u.digests) users.set(d, (users.get(d) ?? 0) + 1);
  return uses
    .map(({ repository, digests }) => {
      let exclusive = 0;
      let shared = 0;
      for (const d of digests) {
        const n = sizes.get(d) ?? 0;
        if (users.get(d) === 1) exclusive += n;
        else shared += n;
      }
      return { repository, bytes: exclusive + shared, exclusive, shared };
    })
    .sort((a, b) => b.bytes - a.bytes || a.repository.localeCompare(b.repository));
}
