import type { FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import type { RepositoryName } from '../oci/name.js';
import type { Platform } from '../oci/platform.js';
import { BlobStore } from '../storage/blobs.js';
import type { StorageDriver } from '../storage/driver.js';
import { RepositoryStore } from '../storage/repository.js';
import { UploadStore } from '../storage/uploads.js';
import { Catalog } from '../storage/catalog.js';
import { RevisionScanner } from '../storage/revision-scan.js';
import { Claims } from '../gc/claim.js';
import type { PullRecorder } from '../gc/pull-recorder.js';
import { allowAll, type Authorizer } from './access.js';
import type { Metrics } from './metrics.js';
import type { PullThroughCache } from '../proxy/cache.js';
import type { Trust } from './trust-setup.js';
import type { Notifier } from '../events/notifier.js';
import type { SyncScheduler } from '../sync/scheduler.js';

/** Which child manifests an index must have in the repository before it is accepted. */
export type IndexPolicy = { mode: 'all' } | { mode: 'none' } | { mode: 'list'; platforms: Platform[] };

/** Everything a route needs: storage, settings and the hooks of the layers around the registry. */
export class RegistryContext {
  readonly blobs: BlobStore;
  readonly uploads: UploadStore;
  readonly catalog: Catalog;
  /** What each repository's revisions say (referrers, index children), read once per process. */
  readonly scanner: RevisionScanner;
  /** Claims of digests against garbage collection, for every writer into this storage (`gc/claim.ts`). */
  readonly claims: Claims;
  readonly deleteEnabled: boolean;
  readonly readOnly: boolean;
  readonly manifestLimit: number;
  readonly indexPolicy: IndexPolicy;
  authorize: Authorizer = allowAll;
  /** Signature requirements (`trust:`), when configured. */
  trust: Trust | undefined;
  /** Records the last pull per tag and manifest (`storage.gc.pulls`), when enabled. */
  pulls: PullRecorder | undefined;
  /** The pull-through cache, when upstreams (or Distribution's proxy block) are configured. */
  cache: PullThroughCache | undefined;
  /** The events journal and its deliveries (`notifications:`), when configured. */
  events: Notifier | undefined;
  /** The mirror jobs' scheduler once the server is ready (none on a read-only node or without `mirrors:`). */
  mirrors: SyncScheduler | undefined;
  /** Narrows the catalog to what the caller may see; set by access control. */
  catalogFilter: ((request: FastifyRequest, names: string[]) => Promise<string[]>) | undefined;
  /** Whether the caller may push to a repository (never throws); set by access control. */
  mayPush: ((request: FastifyRequest, repository: string) => Promise<boolean>) | undefined;

  constructor(
    readonly driver: StorageDriver,
    readonly config: Config,
    readonly metrics: Metrics,
  ) {
    this.blobs = new BlobStore(driver);
    this.uploads = new UploadStore(driver, this.blobs, config.limits.blobbytes);
    this.catalog = new Catalog(driver);
    this.claims = new Claims(driver);
    this.deleteEnabled = config.storage.delete?.enabled ?? false;
    this.readOnly = config.storage.maintenance?.readonly?.enabled ?? false;
    this.scanner = new RevisionScanner(driver, !this.readOnly);
    this.manifestLimit = config.limits.manifestbytes;
    const idx = config.validation.manifests?.indexes;
    this.indexPolicy =
      idx?.platforms === 'none'
        ? { mode: 'none' }
        : idx?.platforms === 'list'
          ? { mode: 'list', platforms: idx.platformlist }
          : { mode: 'all' };
  }

  /** The storage view of one repository. */
  repo(name: RepositoryName): RepositoryStore {
    return new RepositoryStore(this.driver, this.blobs, name);
  }
}
