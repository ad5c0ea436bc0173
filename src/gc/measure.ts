import type { Digest } from '../oci/digest.js';
import { limiter } from '../copy/limit.js';
import type { StorageDriver } from '../storage/driver.js';
import { blobDataPath } from '../storage/layout.js';
import { markStorage } from './mark.js';
import { usageOf, type RepositoryUsage } from './usage.js';

/** Storage reads in flight at once while sizing blobs. */
const STATS_AT_ONCE = 16;

/** Reads the storage as the collector's mark does, sizes every blob, and says what each repository uses. */
export async function measureUsage(driver: StorageDriver, options: { deleteUntagged: boolean }): Promise<RepositoryUsage[]> {
  const facts = await markStorage(driver, new Map());
  const sizes = new Map<Digest, number>();
  const limit = limiter(STATS_AT_ONCE);
  await Promise.all(
    [...facts.blobs].map((d) =>
      limit(async () => {
        const info = await driver.stat(blobDataPath(d));
        if (info && !info.isDirectory) sizes.set(d, info.size);
      }),
    ),
  );
  return usageOf(facts, sizes, options);
}
