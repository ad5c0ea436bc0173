import type { Digest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/name.js';
import { limiter } from '../async/limit.js';
import type { StorageDriver } from '../storage/driver.js';
import { blobDataPath } from '../storage/layout.js';
import { markStorage } from './mark.js';
import { tagUsageOf, type TagUsage } from './tag-usage.js';
import { usageOf, type RepositoryUsage } from './usage.js';

/** Storage reads in flight at once while sizing blobs. */
const STATS_AT_ONCE = 16;

/**
 * The size of every blob of `digests`, stat'ed unless `known` has it (a digest's size never changes). The
 * result holds only these digests, so a caller that keeps it as `known` keeps nothing deleted.
 */
export async function sizeBlobs(
  driver: StorageDriver,
  digests: Iterable<Digest>,
  known: Map<Digest, number> = new Map(),
): Promise<Map<Digest, number>> {
  const sizes = new Map<Digest, number>();
  const limit = limiter(STATS_AT_ONCE);
  await Promise.all(
    [...digests].map((d) =>
      limit(async () => {
        const had = known.get(d);
        if (had !== undefined) return sizes.set(d, had);
        const info = await driver.stat(blobDataPath(d));
        if (info && !info.isDirectory) sizes.set(d, info.size);
        return sizes;
      }),
    ),
  );
  return sizes;
}

/** Reads the storage as the collector's mark does, sizes every blob, and says what each repository uses. */
export async function measureUsage(
  driver: StorageDriver,
  options: { deleteUntagged: boolean },
): Promise<RepositoryUsage[]> {
  const facts = await markStorage(driver, new Map());
  return usageOf(facts, await sizeBlobs(driver, facts.blobs), options);
}

/** Reads the storage as `measureUsage` does and says, per tag of each repository named, what it names and frees. */
export async function measureTagUsage(
  driver: StorageDriver,
  repositories: RepositoryName[] | 'all',
  options: { deleteUntagged: boolean },
): Promise<TagUsage[]> {
  const facts = await markStorage(driver, new Map());
  const sizes = await sizeBlobs(driver, facts.blobs);
  const names = repositories === 'all' ? facts.repositories.map((r) => r.name) : repositories;
  return names.flatMap((name) => tagUsageOf(facts, sizes, name, options));
}
