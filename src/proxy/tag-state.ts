import type { Digest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/name.js';
import type { StorageDriver } from '../storage/driver.js';
import { checkTag, repoPath } from '../storage/layout.js';

/**
 * What the cache keeps of one tag it fetched: which digest, and when it came. When it was last pulled is not
 * kept here: every node records pulls in its own file (`src/gc/pulls.ts`), which retention and eviction read.
 */
export interface TagRecord {
  digest: Digest;
  fetchedAt: string;
}

const RECORD_LIMIT = 4096;

// Under a `_`-prefixed folder, which Distribution's repository walk never enters.
function recordPath(name: RepositoryName, tag: string): string {
  return `${repoPath(name)}/_sluice/cache/tags/${checkTag(tag)}.json`;
}

/** Per-tag fetch times in storage. */
export class TagState {
  constructor(
    private readonly driver: StorageDriver,
    private readonly writable: boolean,
  ) {}

  /** The record of a tag, or null when there is none or it is not one (the web UI shows when a tag came). */
  async read(name: RepositoryName, tag: string): Promise<TagRecord | null> {
    const b = await this.driver.getContent(recordPath(name, tag));
    // A record is two short fields: anything larger is not ours.
    if (!b || b.length > RECORD_LIMIT) return null;
    try {
      const r = JSON.parse(b.toString('utf8')) as Partial<TagRecord>;
      if (typeof r.digest !== 'string' || typeof r.fetchedAt !== 'string') return null;
      return { digest: r.digest as Digest, fetchedAt: r.fetchedAt };
    } catch {
      return null;
    }
  }

  /** Records that a tag was fetched (or found moved) from upstream. */
  async fetched(name: RepositoryName, tag: string, digest: Digest): Promise<void> {
    if (!this.writable) return;
    const record: TagRecord = { digest, fetchedAt: new Date().toISOString() };
    await this.driver.putContent(recordPath(name, tag), Buffer.from(JSON.stringify(record)));
  }
}
