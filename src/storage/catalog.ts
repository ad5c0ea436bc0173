import { isRepositoryName } from '../oci/name.js';
import type { StorageDriver } from './driver.js';
import { walkRepositoryDirs } from './layout.js';

/**
 * Lists repositories by walking Distribution's directory tree: a directory holding `_manifests` is a
 * repository, and `_`-prefixed directories are never descended into. The sorted walk is cached for a
 * moment because every page of a paginated catalog would otherwise walk the whole tree again.
 */
export class Catalog {
  private cached: { at: number; names: string[] } | undefined;

  constructor(
    private readonly driver: StorageDriver,
    private readonly ttlMs = 2000,
  ) {}

  /** Forgets the cached walk (after a push creates a repository in this process). */
  invalidate(): void {
    this.cached = undefined;
  }

  /** Every repository name, sorted. */
  async all(): Promise<string[]> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < this.ttlMs) return this.cached.names;
    const names: string[] = [];
    await walkRepositoryDirs(this.driver, (name, children) => {
      // A folder outside the name grammar (written by hand, or before names were checked) cannot be served.
      if (children.includes('_manifests') && isRepositoryName(name)) names.push(name);
    });
    names.sort();
    this.cached = { at: now, names };
    return names;
  }

  /** Whether a repository name exists, answering from the cache when it can. */
  async has(name: string): Promise<boolean> {
    return (await this.all()).includes(name);
  }
}
