// The pull-through cache's entry: the class the registry holds, which hands each job to its own module.
import { isDigest, type Digest } from '../oci/digest.js';
import { isTag, type RepositoryName } from '../oci/name.js';
import type { FlowPolicy } from '../policy/flows.js';
import { ANONYMOUS } from '../policy/types.js';
import type { Upstreams } from '../upstream/upstreams.js';
import type { BlobFill } from './blob-fill.js';
import { blobFillFor } from './cache-blobs.js';
import type { CacheAudit, CacheObserver, Requester } from './cache-report.js';
import { CacheState, NOBODY, type CacheDeps } from './cache-state.js';
import { ensureByDigest } from './digest-fetch.js';
import { cacheTarget, isCacheRepository, type CacheTarget } from './names.js';
import { ensureTag } from './tag-fetch.js';
import { listTags } from './tag-list.js';

export type { CacheAuditRecord, Requester } from './cache-report.js';
export type { CacheDeps } from './cache-state.js';
export { attachmentSubject } from './tag-fetch.js';

/**
 * The pull-through cache: fetches what the flow rules approve from upstream on first pull, keeps it
 * byte for byte in local repositories named as upstream names them, keeps tags fresh with HEAD after
 * their ttl, serves stale when upstream fails, and downloads each blob once however many clients wait.
 */
export class PullThroughCache {
  private readonly state: CacheState;

  constructor(
    readonly upstreams: Upstreams,
    readonly flows: FlowPolicy,
    private readonly deps: CacheDeps,
  ) {
    this.state = new CacheState(upstreams, flows, deps);
  }

  /** Sends the cache's log lines to the registry's logger. */
  attach(log: CacheDeps['log']): void {
    this.deps.log = log;
  }

  /** Sends a record of every fetch and refusal to the audit log. */
  auditTo(audit: CacheAudit): void {
    this.state.reports.audit = audit;
  }

  /** Journals every fetch and refusal as an event, awaited before the request that caused it is answered. */
  observeWith(observe: CacheObserver): void {
    this.state.reports.observe = observe;
  }

  /** The cache's view of a request's repository, or undefined for a local one. */
  target(name: RepositoryName, req: { ns?: string; host?: string; write: boolean }): Promise<CacheTarget | undefined> {
    return cacheTarget(this.upstreams, name, {
      ...(req.ns ? { ns: req.ns } : {}),
      ...(req.host ? { host: req.host } : {}),
      approved: (image) => this.approvesName(image),
      // A first push to `team/app` makes a local repository, whatever upstream has of that name.
      localExists: async () => req.write || (await this.deps.repo(name).exists()),
    });
  }

  /** Whether some flow rule lets images of this name in (ignoring tags), before any rule denies it. */
  private approvesName(image: string): boolean {
    const rule = this.flows.flows.find((f) => f.images.some((p) => p.matches({ repository: image }, ANONYMOUS)));
    return rule !== undefined && !rule.spec.deny;
  }

  /**
   * Cache repositories a client's name may reach without a storage lookup (for token grants): the name
   * itself when it starts with an upstream prefix, `<unprefixed upstream>/<name>` otherwise.
   */
  aliases(name: string): string[] {
    if (isCacheRepository(this.upstreams, name)) return [];
    const u = this.upstreams.unprefixed();
    if (!u) return [];
    const remote = u.name === 'docker.io' && !name.includes('/') ? `library/${name}` : name;
    return [`${u.prefix}/${remote}`];
  }

  /** The upstream a local repository caches, for refusing writes to it. */
  cacheOf(name: string): string | undefined {
    return isCacheRepository(this.upstreams, name)?.name;
  }

  /**
   * Makes sure the local repository holds the manifest `reference` names, fresh within its ttl, fetching
   * it from upstream when the flows allow; afterwards the registry serves it from storage as any other.
   */
  async ensureManifest(t: CacheTarget, reference: string, who: Requester = NOBODY): Promise<void> {
    if (isDigest(reference)) return ensureByDigest(this.state, t, reference, who);
    if (!isTag(reference)) return;
    return ensureTag(this.state, t, reference, who);
  }

  /**
   * Serves a blob of a cache repository that storage does not have yet, from a fill of the upstream blob,
   * or answers undefined when storage has it (the registry then serves it as usual); see `cache-blobs.ts`.
   */
  blobFill(t: CacheTarget, digest: Digest): Promise<BlobFill | undefined> {
    return blobFillFor(this.state, t, digest);
  }

  /** Tags of a cache repository: upstream's the flows allow, and the cached ones (only those if upstream fails). */
  tags(t: CacheTarget): Promise<string[]> {
    return listTags(this.state, t);
  }

  /** Waits for fills and background fetches, then closes upstream connections. */
  async close(): Promise<void> {
    await Promise.all([...this.state.background]);
    await this.state.fills.settle();
    await this.upstreams.close();
  }

  /** Waits until background fetches (referrers, signatures) are done; for tests and shutdown. */
  async idle(): Promise<void> {
    while (this.state.background.size > 0) await Promise.all([...this.state.background]);
  }
}
