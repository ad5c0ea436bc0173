import type { Digest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/name.js';
import type { StorageDriver } from '../storage/driver.js';
import { checkTag, repoPath } from '../storage/layout.js';

/** What the cache keeps of one tag it fetched, for retention: when it came, and when it was last pulled. */
export interface TagRecord {
  digest: Digest;
  fetchedAt: string;
  lastPulledAt?: string;
}

// Under a `_`-prefixed folder, which Distribution's repository walk never enters.
function recordPath(name: RepositoryName, tag: string): string {
  return `${repoPath(name)}/_sluice/cache/tags/${checkTag(tag)}.json`;
}

const PULL_WRITE_INTERVAL_MS = 60_000;

/** Per-tag fetch and last-pull times in storage; pull times are written at most once a minute per tag. */
export class TagState {
  private readonly lastWrite = new Map<string, number>();

  constructor(
    private readonly driver: StorageDriver,
    private readonly writable: boolean,
  ) {}

  /** The record of a tag, or null. */
  async read(name: RepositoryName, tag: string): Promise<TagRecord | null> {
    const b = await this.driver.getContent(recordPath(name, tag));
    if (!b) return null;
    try {
      return JSON.parse(b.toString('utf8')) as TagRecord;
    } catch {
      return null;
    }
  }

  /** Records that a tag was fetched (or found moved) from upstream. */
  async fetched(name: RepositoryName, tag: string, digest: Digest): Promise<void> {
    if (!this.writable) return;
    const now = new Date().toISOString();
    await this.driver.putContent(recordPath(name, tag), Buffer.from(JSON.stringify({ digest, fetchedAt: now, lastPulledAt: now })));
    this.lastWrite.set(`${name}:${tag}`, Date.now());
  }

  /** Records a pull of a cached tag (throttled). */
  async pulled(name: RepositoryName, tag: string): Promise<void> {
    if (!this.writable) return;
    const key = `${name}:${tag}`;
    const last = this.lastWrite.get(key) ?? 0;
    if (Date.now() - last < PULL_WRITE_INTERVAL_MS) return;
    this.lastWrite.set(key, Date.now());
    if (this.lastWrite.size > 10_000) this.lastWrite.delete(this.lastWrite.keys().next().value!);
    const rec = await this.read(name, tag);
    if (!rec) return;
    rec.lastPulledAt = new Date().toISOString();
    await this.driver.putContent(recordPath(name, tag), Buffer.from(JSON.stringify(rec)));
  }
}
