import type { StorageDriver } from './driver.js';
import { repositoriesRoot } from './layout.js';

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
    const walk = async (rel: string): Promise<void> => {
      const children = await this.driver.list(rel ? `${repositoriesRoot}/${rel}` : repositoriesRoot);
      if (rel && children.includes('_manifests')) names.push(rel);
      await Promise.all(children.filter((c) => !c.startsWith('_')).map((c) => walk(rel ? `${rel}/${c}` : c)));
    };
    await walk('');
    names.sort();
    this.cached = { at: now, names };
    return names;
  }

  /** Whether a repository name exists, answering from the cache when it can. */
  async has(name: string): Promise<boolean> {
    return (await this.all()).includes(name);
  }
}
