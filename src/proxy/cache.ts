import { Counter, type Registry as MetricsRegistry } from 'prom-client';
import { digestOf, digestTag, isDigest, type Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { ManifestError, parseManifest, referencedBlobs, type Manifest } from '../oci/manifest.js';
import { MANIFEST_MEDIA_TYPES } from '../oci/mediatypes.js';
import { formatPlatform } from '../oci/platform.js';
import { isTag, type RepositoryName } from '../oci/name.js';
import {
  decideFlow,
  flowLabel,
  platformAllowed,
  platformsText,
  type CompiledFlow,
  type FlowDecision,
  type FlowPolicy,
} from '../policy/flows.js';
import type { BlobStore } from '../storage/blobs.js';
import type { StorageDriver } from '../storage/driver.js';
import type { RepositoryStore } from '../storage/repository.js';
import type { RevisionScanner } from '../storage/revision-scan.js';
import type { UploadStore } from '../storage/uploads.js';
import { release, TooLargeError } from '../transport/bounded.js';
import { watchRate } from '../transport/min-rate.js';
import {
  errorFrom,
  readBody,
  readJson,
  header,
  isConnectionError,
  RegistryError,
  type ClientResponse,
} from '../transport/registry-client.js';
import { parseDuration } from '../config/duration.js';
import type { Upstreams } from '../upstream/upstreams.js';
import { ANONYMOUS } from '../policy/types.js';
import { BlobFills, type BlobFill } from './blob-fill.js';
import { manifestClaims } from '../gc/claim.js';
import { cacheTarget, isCacheRepository, type CacheTarget } from './names.js';
import { TagState } from './tag-state.js';
import { isEvidence } from '../sign/evidence.js';
import type { ImageSource } from '../transport/transport.js';
import { CacheReports, type CacheAudit, type CacheObserver, type Requester } from './cache-report.js';

export type { CacheAuditRecord, Requester } from './cache-report.js';

const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');
const COSIGN_SUFFIXES = ['sig', 'att', 'sbom'];

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

/** A manifest read from upstream and checked, not yet stored. */
interface Fetched {
  digest: Digest;
  manifest: Manifest;
  bytes: Buffer;
}

const NOBODY: Requester = { principal: 'unknown', address: '' };

/** The subject digest of a cosign attachment tag (`sha256-<hex>.sig`, `.att`, `.sbom`, or the OCI 1.1 fallback `sha256-<hex>`). */
export function attachmentSubject(tag: string): Digest | undefined {
  const m = /^(sha256)-([0-9a-f]{64})(?:\.(?:sig|att|sbom))?$/.exec(tag);
  return m ? (`${m[1]}:${m[2]}` as Digest) : undefined;
}

/** An upstream failure the cache may answer with what it has (timeouts, refused connections, 5xx, 429). */
function isOutage(e: unknown): boolean {
  if (e instanceof RegistryError) return e.status >= 500 || e.status === 429 || e.status === 401 || e.status === 403;
  return (
    isConnectionError(e) ||
    /cannot reach registry|timeout|ECONNREFUSED|socket/i.test(String((e as Error)?.message ?? ''))
  );
}

function ociErrorForOutage(t: CacheTarget, e: unknown): OciError {
  // A refusal is not an outage: say so, and where the credentials are set (clients show 4xx messages, not 5xx bodies).
  if (e instanceof RegistryError && (e.status === 401 || e.status === 403)) {
    return new OciError(
      'DENIED',
      `upstream ${t.upstream.name} refused the cache's request for ${t.image} (HTTP ${e.status}): check the credentials under upstreams.${t.upstream.name}`,
    );
  }
  const msg = `upstream ${t.upstream.name} failed for ${t.image}: ${(e as Error).message}`;
  if (e instanceof RegistryError && e.status === 429) return new OciError('TOOMANYREQUESTS', msg);
  return new OciError('UNKNOWN', msg, undefined, 502);
}

/**
 * The pull-through cache: fetches what the flow rules approve from upstream on first pull, keeps it
 * byte for byte in local repositories named as upstream names them, keeps tags fresh with HEAD after
 * their ttl, serves stale when upstream fails, and downloads each blob once however many clients wait.
 */
export class PullThroughCache {
  private readonly fills: BlobFills;
  private readonly tagState: TagState;
  /** When each `local:tag` was last confirmed with upstream. */
  private readonly checked = new Map<string, number>();
  /** Upstream 404s, remembered until the time stored. */
  private readonly missing = new Map<string, number>();
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly background = new Set<Promise<void>>();
  private readonly reports = new CacheReports();
  private readonly counters: {
    requests: Counter<'kind' | 'result'>;
    upstreamBytes: Counter<'upstream'>;
    denials: Counter<'rule'>;
  };

  constructor(
    readonly upstreams: Upstreams,
    readonly flows: FlowPolicy,
    private readonly deps: CacheDeps,
  ) {
    this.fills = new BlobFills(deps);
    this.tagState = new TagState(deps.driver, !deps.readOnly);
    this.counters = {
      requests: new Counter({
        name: 'sluice_cache_requests_total',
        help: 'Cache requests by kind and result (hit, miss, joined: served by a blob fill already under way, stale, denied, error)',
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

  /** Sends the cache's log lines to the registry's logger. */
  attach(log: CacheDeps['log']): void {
    this.deps.log = log;
  }

  /** Sends a record of every fetch and refusal to the audit log. */
  auditTo(audit: CacheAudit): void {
    this.reports.audit = audit;
  }

  /** Journals every fetch and refusal as an event, awaited before the request that caused it is answered. */
  observeWith(observe: CacheObserver): void {
    this.reports.observe = observe;
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

  /** Counts and reports a refusal (journaled before the answer), and gives the error the client is sent. */
  private async refusal(
    t: CacheTarget,
    reference: string,
    reason: string,
    flow: CompiledFlow | undefined,
    who: Requester,
  ): Promise<OciError> {
    this.counters.requests.inc({ kind: 'manifest', result: 'denied' });
    this.counters.denials.inc({ rule: flow ? String(flow.index) : 'none' });
    await this.reports.report({
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

  private ttlOf(t: CacheTarget, flow: CompiledFlow | undefined): number {
    return flow?.spec.ttl ? parseDuration(flow.spec.ttl) : t.upstream.ttlMs;
  }

  /**
   * Makes sure the local repository holds the manifest `reference` names, fresh within its ttl, fetching
   * it from upstream when the flows allow; afterwards the registry serves it from storage as any other.
   */
  async ensureManifest(t: CacheTarget, reference: string, who: Requester = NOBODY): Promise<void> {
    if (isDigest(reference)) return this.ensureByDigest(t, reference, who);
    if (!isTag(reference)) return;
    const repo = this.deps.repo(t.local);
    const decision = await this.decideTag(t, reference, repo);
    if (!decision.allowed) throw await this.refusal(t, reference, decision.reason, decision.flow, who);
    const key = `${t.local}:${reference}`;
    const local = await repo.resolveTag(reference);
    const last = this.checked.get(key);
    if (local && last !== undefined && Date.now() - last < this.ttlOf(t, decision.flow)) {
      this.counters.requests.inc({ kind: 'manifest', result: 'hit' });
      return;
    }
    // A read-only node serves what the bucket or folder holds and never writes what it would fetch.
    if (this.deps.readOnly) {
      if (local) return;
      throw new OciError(
        'MANIFEST_UNKNOWN',
        `${t.image}:${reference} is not cached, and this registry is read-only so it does not fetch`,
        { tag: reference },
      );
    }
    if (!local && (this.missing.get(key) ?? 0) > Date.now()) {
      throw new OciError(
        'MANIFEST_UNKNOWN',
        `${t.image}:${reference} is not known upstream at ${t.upstream.name} (remembered for a moment)`,
        { tag: reference },
      );
    }
    let run = this.inflight.get(key);
    if (!run) {
      run = this.refreshTag(t, reference, local, decision.flow, who).finally(() => this.inflight.delete(key));
      this.inflight.set(key, run);
    }
    await run;
  }

  /**
   * The flow decision for a tag. A cosign attachment tag of a manifest the cache holds is judged by the
   * image name alone: a tag filter speaks of image versions, and the signature belongs to one that passed.
   */
  private async decideTag(t: CacheTarget, tag: string, repo: RepositoryStore): Promise<FlowDecision> {
    const subject = attachmentSubject(tag);
    if (subject && (await repo.hasManifest(subject))) {
      const rule = this.flows.flows.find((f) => f.images.some((p) => p.matches({ repository: t.image }, ANONYMOUS)));
      if (rule && !rule.spec.deny)
        return { allowed: true, flow: rule, reason: `attachment of cached ${t.image}@${subject}` };
    }
    return decideFlow(this.flows, { repository: t.image, tag });
  }

  private async refreshTag(
    t: CacheTarget,
    tag: string,
    local: Digest | null,
    flow: CompiledFlow | undefined,
    who: Requester,
  ): Promise<void> {
    const key = `${t.local}:${tag}`;
    let upstreamDigest: string | undefined;
    // Nothing cached yet: the GET that must come anyway answers what a HEAD would, one round trip sooner.
    if (!local) return this.fetchTag(t, tag, tag, null, flow, who);
    try {
      const res = await this.request(t, 'HEAD', `manifests/${encodeURIComponent(tag)}`, { accept: ACCEPT });
      await res.body.dump();
      if (res.statusCode === 404) return this.serveStale(t, tag, 'upstream no longer has the tag');
      if (res.statusCode !== 200)
        throw new RegistryError(`HEAD ${t.image}:${tag}: HTTP ${res.statusCode}`, res.statusCode);
      upstreamDigest = header(res, 'docker-content-digest');
    } catch (e) {
      if (e instanceof OciError) throw e;
      if (isOutage(e)) return this.serveStale(t, tag, (e as Error).message);
      this.counters.requests.inc({ kind: 'manifest', result: 'error' });
      throw ociErrorForOutage(t, e);
    }
    if (upstreamDigest === local) {
      this.checked.set(key, Date.now());
      this.counters.requests.inc({ kind: 'manifest', result: 'hit' });
      return;
    }
    // Moved upstream: fetch by digest when HEAD named one, so a tag moving meanwhile cannot mix bytes.
    return this.fetchTag(t, tag, upstreamDigest && isDigest(upstreamDigest) ? upstreamDigest : tag, local, flow, who);
  }

  /** Fetches the manifest a tag names upstream (by `reference`: the tag, or the digest a HEAD gave) and tags it here. */
  private async fetchTag(
    t: CacheTarget,
    tag: string,
    reference: string,
    local: Digest | null,
    flow: CompiledFlow | undefined,
    who: Requester,
  ): Promise<void> {
    const key = `${t.local}:${tag}`;
    const repo = this.deps.repo(t.local);
    let fetched: Fetched | null;
    try {
      fetched = await this.fetchManifest(t, reference);
    } catch (e) {
      if (e instanceof OciError) throw e;
      if (local && isOutage(e)) return this.serveStale(t, tag, (e as Error).message);
      this.counters.requests.inc({ kind: 'manifest', result: 'error' });
      throw ociErrorForOutage(t, e);
    }
    if (!fetched) {
      if (!local) this.missing.set(key, Date.now() + t.upstream.negativeTtlMs);
      throw new OciError('MANIFEST_UNKNOWN', `${t.image}:${tag} is not known upstream at ${t.upstream.name}`, { tag });
    }
    const verdict = await this.judge(t, fetched, `${t.image}:${tag}`);
    if (verdict && !verdict.allowed)
      throw await this.refusal(t, tag, `${t.image}:${tag} is not fetched: ${verdict.reason}`, flow, who);
    await this.store(t, fetched);
    // The signatures come along before the tag, so a pull here (trust on pull) finds them with the image.
    if (this.deps.verify && !isEvidence(fetched.manifest)) await this.fetchAttachments(t, fetched.digest);
    await repo.tag(tag, fetched.digest);
    this.checked.set(key, Date.now());
    this.deps.changed?.();
    await this.tagState.fetched(t.local, tag, fetched.digest).catch(() => undefined);
    this.counters.requests.inc({ kind: 'manifest', result: 'miss' });
    const moved = local ? ` (moved from ${local})` : '';
    this.deps.log.info(
      { upstream: t.upstream.name, image: t.image, tag, digest: fetched.digest },
      `cache: fetched ${t.image}:${tag}${moved}`,
    );
    await this.reports.report({
      ...who,
      action: 'fetch',
      repository: t.image,
      reference: `${tag}@${fetched.digest}`,
      decision: 'allowed',
      reason: `fetched from ${t.upstream.name}${moved}`,
      ...(flow ? { rule: flowLabel(flow) } : {}),
    });
    if (flow?.spec.referrers && !this.deps.verify) this.inBackground(this.fetchAttachments(t, fetched.digest));
  }

  private serveStale(t: CacheTarget, tag: string, why: string): void {
    this.counters.requests.inc({ kind: 'manifest', result: 'stale' });
    this.deps.log.warn(
      { upstream: t.upstream.name, image: t.image, tag, reason: why },
      `cache: serving ${t.image}:${tag} stale: ${why}`,
    );
  }

  private async ensureByDigest(t: CacheTarget, digest: Digest, who: Requester): Promise<void> {
    const repo = this.deps.repo(t.local);
    // By-digest pulls of cached content never touch upstream.
    if (await repo.hasManifest(digest)) {
      this.counters.requests.inc({ kind: 'manifest', result: 'hit' });
      return;
    }
    await this.deps.scanner.refresh(repo);
    const listing = await this.deps.scanner.indexListing(repo, digest);
    // A child of an index the trust check passed is covered by the index's signature; anything else is judged itself.
    const coveredByIndex = listing !== null && !(await this.isEvidenceStored(repo, listing.index));
    if (listing) {
      // A child of an index that came in through an approved tag: the platform filter decides.
      const flow = this.firstFlowFor(t);
      if (!platformAllowed(flow, listing.platform)) {
        this.counters.requests.inc({ kind: 'manifest', result: 'denied' });
        const what = listing.platform ? formatPlatform(listing.platform) : `manifest ${digest}`;
        throw new OciError(
          'MANIFEST_UNKNOWN',
          `${what} of index ${listing.index} is not stored in this registry: ${flow ? flowLabel(flow) : 'the flow rules'} brings in only ${flow ? platformsText(flow) : 'some platforms'} of ${t.image}`,
          { digest },
        );
      }
    } else {
      const decision = decideFlow(this.flows, { repository: t.image, digest });
      if (!decision.allowed) throw await this.refusal(t, digest, decision.reason, decision.flow, who);
    }
    if (this.deps.readOnly)
      throw new OciError(
        'MANIFEST_UNKNOWN',
        `${t.image}@${digest} is not cached, and this registry is read-only so it does not fetch`,
        { digest },
      );
    const key = `${t.local}@${digest}`;
    let run = this.inflight.get(key);
    if (!run) {
      run = (async () => {
        let fetched: Awaited<ReturnType<typeof this.fetchManifest>>;
        try {
          fetched = await this.fetchManifest(t, digest);
        } catch (e) {
          if (e instanceof OciError) throw e;
          throw ociErrorForOutage(t, e);
        }
        if (!fetched)
          throw new OciError('MANIFEST_UNKNOWN', `${t.image}@${digest} is not known upstream at ${t.upstream.name}`, {
            digest,
          });
        if (!coveredByIndex) {
          const verdict = await this.judge(t, fetched, `${t.image}@${digest}`);
          if (verdict && !verdict.allowed)
            throw await this.refusal(
              t,
              digest,
              `${t.image}@${digest} is not fetched: ${verdict.reason}`,
              undefined,
              who,
            );
        }
        await this.store(t, fetched);
        this.counters.requests.inc({ kind: 'manifest', result: 'miss' });
        await this.reports.report({
          ...who,
          action: 'fetch',
          repository: t.image,
          reference: digest,
          decision: 'allowed',
          reason: `fetched from ${t.upstream.name}`,
        });
        this.deps.changed?.();
      })().finally(() => this.inflight.delete(key));
      this.inflight.set(key, run);
    }
    await run;
  }

  /** The first allowing flow rule whose images match the name, whatever its tag filter (for platform checks). */
  private firstFlowFor(t: CacheTarget): CompiledFlow | undefined {
    for (const f of this.flows.flows) {
      if (f.spec.deny) continue;
      if (f.images.some((p) => p.matches({ repository: t.image }, ANONYMOUS))) return f;
    }
    return undefined;
  }

  /** Fetches a manifest (by tag or digest) and checks its digest and shape, storing nothing; null on upstream 404. */
  private async fetchManifest(t: CacheTarget, reference: string): Promise<Fetched | null> {
    const res = await this.request(t, 'GET', `manifests/${encodeURIComponent(reference)}`, { accept: ACCEPT });
    if (res.statusCode === 404) {
      await res.body.dump();
      return null;
    }
    if (res.statusCode !== 200) throw await errorFrom(res, `${t.image}: manifest ${reference}`);
    const bytes = await readManifest(res, this.deps.manifestLimit, `${t.image}: manifest ${reference}`);
    this.counters.upstreamBytes.inc({ upstream: t.upstream.name }, bytes.length);
    const digest = digestOf(bytes);
    if (isDigest(reference) && digest !== reference) {
      throw new OciError(
        'MANIFEST_INVALID',
        `upstream ${t.upstream.name} sent a manifest with digest ${digest} for ${t.image}@${reference}`,
      );
    }
    const announced = header(res, 'docker-content-digest');
    if (announced?.startsWith('sha256:') && announced !== digest) {
      throw new OciError(
        'MANIFEST_INVALID',
        `upstream ${t.upstream.name} announced ${announced} for ${t.image}:${reference} but sent bytes with digest ${digest}`,
      );
    }
    let manifest: Manifest;
    try {
      manifest = parseManifest(bytes, header(res, 'content-type')?.split(';')[0]?.trim());
    } catch (e) {
      if (e instanceof ManifestError)
        throw new OciError(
          'MANIFEST_INVALID',
          `upstream ${t.upstream.name} sent an invalid manifest for ${t.image}:${reference}: ${e.message}`,
        );
      throw e;
    }
    return { digest, manifest, bytes };
  }

  /** Stores a fetched manifest's exact bytes (after every check on it passed). */
  private async store(t: CacheTarget, f: Fetched): Promise<void> {
    // Claimed first, so a collector sweeping meanwhile cannot delete what the manifest names.
    await this.deps.claim?.(manifestClaims(f.digest, f.manifest));
    await this.deps.repo(t.local).putManifest(f.bytes, f.manifest.subject?.digest);
  }

  /**
   * The trust verdict for a manifest fetched from upstream, before any of it is stored: undefined when no
   * rule covers the image or it is evidence (a signature, attestation or SBOM, by its layers' media types);
   * otherwise the verdict over the signatures upstream shows for it.
   */
  private async judge(
    t: CacheTarget,
    f: Fetched,
    dockerReference: string,
  ): Promise<{ allowed: boolean; reason: string } | undefined> {
    if (!this.deps.verify || isEvidence(f.manifest)) return undefined;
    const source = t.upstream.source(t.remote, f.digest);
    try {
      return await this.deps.verify(t.image, source, f.digest, dockerReference);
    } finally {
      await source.close();
    }
  }

  private async isEvidenceStored(repo: RepositoryStore, digest: Digest): Promise<boolean> {
    const m = await repo.getManifest(digest);
    if (!m) return false;
    try {
      return isEvidence(parseManifest(m.bytes));
    } catch {
      return false;
    }
  }

  private request(
    t: CacheTarget,
    method: 'GET' | 'HEAD',
    path: string,
    headers: Record<string, string> = {},
  ): Promise<ClientResponse> {
    const client = t.upstream.client(t.remote);
    const repoPath = t.remote.split('/').map(encodeURIComponent).join('/');
    return t.upstream.limit(() => client.send({ method, path: `/v2/${repoPath}/${path}`, headers }));
  }

  /**
   * Serves a blob of a cache repository that storage does not have yet, from a fill of the upstream blob,
   * or answers undefined when storage has it (the registry then serves it as usual). A blob is fetched only
   * when a manifest the cache stored in this repository references it: no blob comes in by digest alone.
   * A HEAD starts the fill too: the GET that follows it then finds bytes arriving.
   */
  async blobFill(t: CacheTarget, digest: Digest): Promise<BlobFill | undefined> {
    const repo = this.deps.repo(t.local);
    if ((await repo.blobSize(digest)) !== null) {
      this.counters.requests.inc({ kind: 'blob', result: 'hit' });
      return undefined;
    }
    await this.deps.scanner.refresh(repo);
    const size = this.deps.scanner.referencedBlobSize(t.local, digest);
    if (size === undefined) {
      throw new OciError(
        'BLOB_UNKNOWN',
        `blob ${digest} is not part of any image cached in ${t.local}: pull a manifest that references it first`,
        { digest },
      );
    }
    await this.deps.claim?.([digest]);
    // Stored already for another repository: linking it here is all it takes.
    if ((await this.deps.blobs.size(digest)) === size) {
      await repo.linkBlob(digest);
      this.counters.requests.inc({ kind: 'blob', result: 'hit' });
      return undefined;
    }
    if (this.deps.readOnly)
      throw new OciError('BLOB_UNKNOWN', `blob ${digest} is not cached yet and this registry is read-only`, { digest });
    // `open` runs for the client that starts the fill only; one that joins a fill under way is counted as joined.
    let opened = false;
    const fill = await this.fills.start(
      digest,
      size,
      t.local,
      async () => {
        opened = true;
        this.counters.requests.inc({ kind: 'blob', result: 'miss' });
        let res: ClientResponse;
        try {
          res = await this.request(t, 'GET', `blobs/${digest}`);
        } catch (e) {
          throw ociErrorForOutage(t, e);
        }
        if (res.statusCode !== 200) {
          const err = await errorFrom(res, `${t.image}: blob ${digest}`);
          if (res.statusCode === 404)
            throw new OciError(
              'BLOB_UNKNOWN',
              `upstream ${t.upstream.name} does not have blob ${digest} of ${t.image}`,
              { digest },
            );
          throw ociErrorForOutage(t, err);
        }
        const length = Number(header(res, 'content-length') ?? size);
        if (length !== size) {
          // Refused before the fill starts, so every asker (a HEAD too) gets an error answer, not a cut body.
          release(res.body);
          throw new OciError(
            'UNKNOWN',
            `upstream ${t.upstream.name} announced ${length} bytes for blob ${digest} of ${t.image}, its manifest says ${size}`,
            { digest },
            502,
          );
        }
        const arrived = watchRate(
          res.body,
          t.upstream.minRate,
          `upstream ${t.upstream.name} blob ${digest} of ${t.image}`,
        );
        const onBytes = (n: number) => {
          arrived(n);
          this.counters.upstreamBytes.inc({ upstream: t.upstream.name }, n);
        };
        return { body: res.body, size: length, onBytes };
      },
      async () => {
        await this.deps.claim?.([digest]);
        await repo.linkBlob(digest);
      },
    );
    if (!opened) this.counters.requests.inc({ kind: 'blob', result: 'joined' });
    void fill.finished.then(() => {
      if (fill.state === 'failed')
        this.deps.log.warn(
          { upstream: t.upstream.name, digest, err: fill.error?.message },
          'cache: blob fill failed; the next pull retries',
        );
    });
    return fill;
  }

  /** Tags of a cache repository: upstream's (those the flows allow) and the cached ones; cached only when upstream fails. */
  async tags(t: CacheTarget): Promise<string[]> {
    const local = await this.deps.repo(t.local).tags();
    let remote: string[] = [];
    try {
      const res = await this.request(t, 'GET', 'tags/list');
      if (res.statusCode === 200) {
        const doc = await readJson<{ tags?: string[] | null }>(res, `${t.image}: tags`, 'tags');
        remote = (doc.tags ?? []).filter(
          (tag) =>
            typeof tag === 'string' && isTag(tag) && decideFlow(this.flows, { repository: t.image, tag }).allowed,
        );
      } else await res.body.dump();
    } catch (e) {
      this.deps.log.warn(
        { upstream: t.upstream.name, image: t.image, err: (e as Error).message },
        'cache: upstream tag list failed; listing cached tags',
      );
    }
    return [...new Set([...local.filter((tag) => !tag.startsWith('sha256-')), ...remote])].sort();
  }

  /** Brings the upstream's referrers and cosign tags of a fetched manifest along (flows with `referrers: true`). */
  private async fetchAttachments(t: CacheTarget, subject: Digest): Promise<void> {
    const wanted: { reference: string; tag?: string }[] = [];
    try {
      const res = await this.request(t, 'GET', `referrers/${subject}`, {
        accept: 'application/vnd.oci.image.index.v1+json',
      });
      if (res.statusCode === 200) {
        const doc = await readJson<{ manifests?: { digest?: string }[] }>(
          res,
          `${t.image}: referrers of ${subject}`,
          'referrers',
        );
        for (const d of doc.manifests ?? []) if (d.digest && isDigest(d.digest)) wanted.push({ reference: d.digest });
      } else await res.body.dump();
    } catch (e) {
      this.deps.log.warn(
        { image: t.image, subject, err: (e as Error).message },
        'cache: referrers of a fetched manifest could not be listed',
      );
    }
    for (const suffix of COSIGN_SUFFIXES)
      wanted.push({ reference: `${digestTag(subject)}.${suffix}`, tag: `${digestTag(subject)}.${suffix}` });
    const repo = this.deps.repo(t.local);
    for (const w of wanted) {
      try {
        const got = await this.fetchManifest(t, w.reference);
        if (!got) continue;
        // Under a trust rule only evidence comes along: an image attached as a referrer or pushed as `.sig` is no signature.
        if (this.deps.verify && !isEvidence(got.manifest)) {
          this.deps.log.warn(
            { image: t.image, reference: w.reference, digest: got.digest },
            'cache: an attachment that is not a signature, attestation or SBOM was not fetched',
          );
          continue;
        }
        await this.store(t, got);
        if (w.tag) await repo.tag(w.tag, got.digest);
        if (got.manifest.kind === 'image') {
          for (const d of referencedBlobs(got.manifest)) {
            await this.deps.scanner.refresh(repo);
            const fill = await this.blobFill(t, d.digest);
            await fill?.finished;
          }
        }
      } catch (e) {
        this.deps.log.warn(
          { image: t.image, reference: w.reference, err: (e as Error).message },
          'cache: an attachment of a fetched manifest could not be fetched',
        );
      }
    }
    this.deps.changed?.();
  }

  private inBackground(p: Promise<void>): void {
    const q = p.catch(() => undefined).finally(() => this.background.delete(q));
    this.background.add(q);
  }

  /** Waits for fills and background fetches, then closes upstream connections. */
  async close(): Promise<void> {
    await Promise.all([...this.background]);
    await this.fills.settle();
    await this.upstreams.close();
  }

  /** Waits until background fetches (referrers, signatures) are done; for tests and shutdown. */
  async idle(): Promise<void> {
    while (this.background.size > 0) await Promise.all([...this.background]);
  }
}

/** Reads an upstream manifest within the registry's manifest limit (and the client's); too large is MANIFEST_INVALID. */
async function readManifest(res: ClientResponse, limit: number, what: string): Promise<Buffer> {
  try {
    return await readBody(res, what, 'manifest', { maxBytes: limit });
  } catch (e) {
    if (e instanceof TooLargeError) throw new OciError('MANIFEST_INVALID', e.message);
    throw e;
  }
}
