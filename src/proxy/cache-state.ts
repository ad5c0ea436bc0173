// The pull-through cache's shared state (dependencies, counters, fetches under way) and the acts every part uses.
import { Counter, type Registry as MetricsRegistry } from 'prom-client';
import type { Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { RepositoryName } from '../oci/name.js';
import { flowLabel, type CompiledFlow, type FlowPolicy } from '../policy/flows.js';
import type { BlobStore } from '../storage/blobs.js';
import type { StorageDriver } from '../storage/driver.js';
import type { RepositoryStore } from '../storage/repository.js';
import type { RevisionScanner } from '../storage/revision-scan.js';
import type { UploadStore } from '../storage/uploads.js';
import type { ClientResponse } from '../transport/registry-client.js';
import type { ImageSource } from '../transport/transport.js';
import type { Upstreams } from '../upstream/upstreams.js';
import { BlobFills } from './blob-fill.js';
import { CacheReports, type Requester } from './cache-report.js';
import type { CacheTarget } from './names.js';
import { TagState } from './tag-state.js';

/** What the cache needs of the registry around it: storage, and hooks for logs, audit and the catalog. */
export interface CacheDeps {
  driver: StorageDriver;
  blobs: BlobStore;
  uploads: UploadStore;
  scanner: RevisionScanner;
  repo(name: RepositoryName): RepositoryStore;
  readOnly: boolean;
  manifestLimit: number;
  metrics: MetricsRegistry;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  /** Claims digests against garbage collection before the cache relies on them (`gc/claim.ts`). */
  claim?: (digests: Iterable<Digest>) => Promise<void>;
  /** Called when the cache stored a new repository or tag. */
  changed?: () => void;
  /**
   * Signature requirements at the cache (`trust:` rules with `on: cache`): undefined when none covers
   * the image; otherwise the verdict over what `source` (upstream, before anything is stored) shows.
   */
  verify?: (
    image: string,
    source: ImageSource,
    digest: Digest,
    dockerReference: string,
  ) => Promise<{ allowed: boolean; reason: string } | undefined>;
}

/** The cache's Prometheus counters. */
export interface CacheCounters {
  requests: Counter<'kind' | 'result'>;
  upstreamBytes: Counter<'upstream'>;
  denials: Counter<'rule'>;
}

/** The requester of a fetch no request names. */
export const NOBODY: Requester = { principal: 'unknown', address: '' };

/** Everything the parts of the cache share: one per `PullThroughCache`. */
export class CacheState {
  readonly fills: BlobFills;
  readonly tagState: TagState;
  /** When each `local:tag` was last confirmed with upstream. */
  readonly checked = new Map<string, number>();
  /** Upstream 404s, remembered until the time stored. */
  readonly missing = new Map<string, number>();
  readonly inflight = new Map<string, Promise<void>>();
  readonly background = new Set<Promise<void>>();
  readonly reports = new CacheReports();
  readonly counters: CacheCounters;

  constructor(
    readonly upstreams: Upstreams,
    readonly flows: FlowPolicy,
    readonly deps: CacheDeps,
  ) {
    this.fills = new BlobFills(deps);
    this.tagState = new TagState(deps.driver, !deps.readOnly);
    this.counters = {
      requests: new Counter({
        name: 'sluice_cache_requests_total',
        help:
          'Cache requests by kind and result ' +
          '(hit, miss, joined: served by a blob fill already under way, stale, denied, error)',
        labelNames: ['kind', 'result'] as const,
        registers: [deps.metrics],
      }),
      upstreamBytes: new Counter({
        name: 'sluice_cache_upstream_bytes_total',
        help: 'Bytes fetched from each upstream',
        labelNames: ['upstream'] as const,
        registers: [deps.metrics],
      }),
      denials: new Counter({
        name: 'sluice_cache_denials_total',
        help: 'Refused upstream images by deciding flow rule',
        labelNames: ['rule'] as const,
        registers: [deps.metrics],
      }),
    };
  }

  /** Runs a fetch nobody waits for (attachments); its failure is logged where it happens, and `idle` awaits it. */
  inBackground(p: Promise<void>): void {
    const q = p.catch(() => undefined).finally(() => this.background.delete(q));
    this.background.add(q);
  }
}

/** Sends a GET or HEAD for `path` under the target's upstream repository, within the upstream's concurrency limit. */
export function upstreamRequest(
  t: CacheTarget,
  method: 'GET' | 'HEAD',
  path: string,
  headers: Record<string, string> = {},
): Promise<ClientResponse> {
  const client = t.upstream.client(t.remote);
  const repoPath = t.remote.split('/').map(encodeURIComponent).join('/');
  return t.upstream.limit(() => client.send({ method, path: `/v2/${repoPath}/${path}`, headers }));
}

/** Counts and reports a refusal (journaled before the answer), and gives the error the client is sent. */
export async function refusal(
  s: CacheState,
  t: CacheTarget,
  reference: string,
  reason: string,
  flow: CompiledFlow | undefined,
  who: Requester,
): Promise<OciError> {
  s.counters.requests.inc({ kind: 'manifest', result: 'denied' });
  s.counters.denials.inc({ rule: flow ? String(flow.index) : 'none' });
  await s.reports.report({
    ...who,
    action: 'fetch',
    repository: t.image,
    reference,
    decision: 'denied',
    reason,
    ...(flow ? { rule: flowLabel(flow) } : {}),
  });
  const hint = t.viaUnprefixed
    ? ` (a name without a registry host means ${t.upstream.name} here; no local repository of that name exists)`
    : '';
  return new OciError('DENIED', `${reason}${hint}`, { repository: t.image, reference });
}
