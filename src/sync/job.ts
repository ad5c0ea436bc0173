import picomatch from 'picomatch';
import { setTimeout as sleep } from 'node:timers/promises';
import { isEvidenceBytes } from '../sign/evidence.js';
import { copyImage, type CopyProgress } from '../copy/copy.js';
import { limiter } from '../async/limit.js';
import { isDigest, type Digest } from '../oci/digest.js';
import { isRepositoryName, isTag, quoteName, type RepositoryName } from '../oci/name.js';
import { parsePlatform } from '../oci/platform.js';
import { parseReference, type Reference } from '../oci/reference.js';
import { MANIFEST_MEDIA_TYPES } from '../oci/mediatypes.js';
import { decideFlow, type FlowPolicy } from '../policy/flows.js';
import type { BlobStore } from '../storage/blobs.js';
import type { StorageDriver } from '../storage/driver.js';
import type { RepositoryStore } from '../storage/repository.js';
import type { UploadStore } from '../storage/uploads.js';
import { RegistrySource } from '../transport/docker.js';
import { openDestination, type TransportOptions } from '../transport/index.js';
import {
  apiHost,
  errorFrom,
  header,
  readJson,
  RegistryClient,
  RegistryPool,
  type ClientResponse,
} from '../transport/registry-client.js';
import { StorageDestination } from '../transport/storage-destination.js';
import type { ImageDestination, ImageSource } from '../transport/transport.js';
import { parseDuration } from '../config/duration.js';
import type { Upstream, Upstreams } from '../upstream/upstreams.js';
import type { MirrorConfig } from './config.js';
import { destinationName } from './destination.js';
import { literalTags, selectTags } from './select.js';
import { readState, writeState, type JobState, type RunSummary } from './state.js';

const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');
const GLOB = /[*?[{]/;
/** A run's tag lists and HEADs in flight at once, over all its repositories. */
const LOOKUPS = 16;
/** Repositories looked up ahead of the one being acted on. */
const LOOK_AHEAD = 16;
/** Images of one repository copied at once unless the job says (`parallel`): a copy waits on round trips more than on bandwidth. */
const IMAGES = 3;

/** What a mirror job needs of the registry around it. */
export interface SyncDeps {
  driver: StorageDriver;
  blobs: BlobStore;
  uploads: UploadStore;
  repo(name: RepositoryName): RepositoryStore;
  upstreams: Upstreams;
  flows: FlowPolicy;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  changed?: () => void;
  /** Claims digests against garbage collection before the job relies on them (`gc/claim.ts`). */
  claim: (digests: Iterable<Digest>) => Promise<void>;
  /** Signature requirements (`trust:`) the job checks at the source before copying. */
  trust?: {
    ruleFor(repository: string, where: 'mirror'): unknown;
    check(
      source: ImageSource,
      repository: string,
      where: 'mirror',
      digest: Digest,
      dockerReference: string,
    ): Promise<{ allowed: boolean; reason: string }>;
  };
  /** Credentials and TLS settings for `to:` destinations (`sluice sync --dest-creds`, `--dest-tls-verify`). */
  destination?: TransportOptions;
  /** Connections shared across runs (`sluice sync`'s jobs); without it each run shares its own and closes them. */
  pool?: RegistryPool;
}

/** What a run reports as it goes, for progress bars or log lines. */
export interface RunProgress {
  /** More images to look at (a repository's selection, once known). */
  images?(n: number): void;
  /** An image starts copying; the callbacks returned follow its blobs. */
  copying?(image: string, destination: string): CopyProgress | undefined;
  /** An image is done with, whatever happened to it. */
  imageDone?(image: string, action: PlanStep['action']): void;
}

/** Options of one run. */
export interface RunOptions {
  dryRun?: boolean;
  onStep?: (s: PlanStep) => void;
  progress?: RunProgress;
}

/** One planned step of a run, as `--dry-run` prints it. */
export interface PlanStep {
  action: 'copy' | 'move' | 'unchanged' | 'prune' | 'refused' | 'error';
  image: string;
  tag?: string;
  digest?: string;
  previous?: string;
  destination?: string;
  reason: string;
}

/** The name a mirror job gives a job without one: its first image, made file-name safe. */
export function jobName(m: MirrorConfig, index: number): string {
  return (
    m.name ??
    (m.images[0]
      ? m.images[0]
          .toLowerCase()
          .replace(/[^a-z0-9._-]+/g, '-')
          .replace(/^-+|-+$/g, '')
      : `job-${index + 1}`)
  );
}

function backupTag(template: string, tag: string, now: Date): string {
  const date = now.toISOString().slice(0, 10).replace(/-/g, '');
  return template
    .replace(/\{tag\}/g, tag)
    .replace(/\{date\}/g, date)
    .slice(0, 128);
}

function backupPattern(template: string): RegExp {
  const parts = template
    .split(/(\{tag\}|\{date\})/)
    .map((p) => (p === '{tag}' ? '.+' : p === '{date}' ? '\\d{8}' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${parts.join('')}$`);
}

function remaining(res: ClientResponse): number | undefined {
  const v = header(res, 'ratelimit-remaining');
  if (!v) return undefined;
  const n = Number(v.split(';')[0]);
  return Number.isFinite(n) ? n : undefined;
}

type Wanted = { tag?: string; digest?: Digest };

/** What a repository's selection is upstream: the tags chosen, the flows' verdicts, each allowed tag's digest (or why not). */
interface Found {
  selected: string[];
  /** The upstream's tags, when they were listed (prune tells "vanished" from "left the selection" by them). */
  upstreamTags: string[];
  allowed: Wanted[];
  refused: (Wanted & { reason: string })[];
  digests: (Digest | Error)[];
}

/** One repository of a run, with its look-up under way (an Error when its tag list failed). */
interface Look {
  upstream: Upstream;
  repository: string;
  image: string;
  dest: string;
  found: Promise<Found | Error>;
}

/** Runs mirror jobs: follows upstream tags, HEAD-only when nothing moved, prunes what left the selection. */
export class MirrorJob {
  readonly name: string;
  private readonly requests: Record<string, number> = {};
  private nextRequestAt = 0;
  /** The run's shared connections (set while a run is under way). */
  private pool = new RegistryPool();
  /** The last run started, so that the next waits for it (they share `pool` and the state file). */
  private previous: Promise<unknown> = Promise.resolve();
  /** The last state write, so that writes from images copied side by side land in order. */
  private saving: Promise<void> = Promise.resolve();
  /** Bounds the run's tag lists and HEADs together. */
  private readonly lookups = limiter(LOOKUPS);

  constructor(
    readonly config: MirrorConfig,
    index: number,
    private readonly deps: SyncDeps,
  ) {
    this.name = jobName(config, index);
  }

  /** Sends one request of the job's own (tag lists, HEADs), within its rate cap and the RateLimit floor. */
  private async request(
    upstream: Upstream,
    repository: string,
    method: 'GET' | 'HEAD',
    path: string,
    headers: Record<string, string> = {},
  ): Promise<ClientResponse> {
    const rl = this.config.ratelimit;
    for (let attempt = 0; ; attempt++) {
      if (rl?.rps) {
        // Each request takes the next free slot, so HEADs sent together still keep to the rate.
        const at = Math.max(Date.now(), this.nextRequestAt);
        this.nextRequestAt = at + 1000 / rl.rps;
        if (at > Date.now()) await sleep(at - Date.now());
      }
      this.requests[method] = (this.requests[method] ?? 0) + 1;
      const repoPath = repository.split('/').map(encodeURIComponent).join('/');
      const res = await upstream.limit(() =>
        this.client(upstream, repository).send({ method, path: `/v2/${repoPath}/${path}`, headers }),
      );
      const left = remaining(res);
      // Below the floor: wait for the window to move instead of spending the last requests (Docker Hub does not count HEADs).
      if (rl && left !== undefined && left < rl.min && attempt < 100) {
        await res.body.dump();
        const wait = parseDuration(rl.retry);
        this.deps.log.warn(
          { job: this.name, remaining: left, floor: rl.min, waitMs: wait },
          `sync ${this.name}: upstream rate limit below the floor; waiting`,
        );
        await sleep(wait);
        continue;
      }
      return res;
    }
  }

  /** A client for one upstream repository on the run's shared connections (the same host the copy's source uses, so one ping serves both). */
  private client(upstream: Upstream, repository: string): RegistryClient {
    return new RegistryClient(apiHost(upstream.name), repository ? [`repository:${repository}:pull`] : [], {
      ...upstream.options,
      pool: this.pool,
    });
  }

  /** Repositories an image entry names: itself, or (a glob) the matching names of the upstream's catalog. */
  private async repositories(
    entry: string,
  ): Promise<{ upstream: Upstream; ref: Reference; repositories: string[]; invalid: string[] }> {
    const host = entry.split('/')[0]!;
    if (!GLOB.test(entry)) {
      const ref = parseReference(entry);
      return {
        upstream: this.deps.upstreams.orDefault(ref.registry),
        ref,
        repositories: [ref.repository],
        invalid: [],
      };
    }
    const ref = parseReference(`${host}/placeholder`);
    const upstream = this.deps.upstreams.orDefault(ref.registry);
    const pattern = entry.slice(host.length + 1);
    const match = picomatch(pattern);
    const names: string[] = [];
    const invalid: string[] = [];
    let path = '/v2/_catalog?n=1000';
    for (let page = 0; page < 100 && path; page++) {
      this.requests.GET = (this.requests.GET ?? 0) + 1;
      const res = await upstream.limit(() =>
        this.client(upstream, '').send({ method: 'GET', path, scopes: ['registry:catalog:*'] }),
      );
      if (res.statusCode !== 200) {
        const err = await errorFrom(res, `catalog of ${upstream.name}`);
        throw new Error(
          `${entry}: upstream ${upstream.name} offers no catalog to expand the glob (${err.message}); name its repositories one by one`,
        );
      }
      const doc = await readJson<{ repositories?: unknown }>(res, `catalog of ${upstream.name}`, 'catalog');
      for (const n of Array.isArray(doc.repositories) ? (doc.repositories as unknown[]) : []) {
        // A name outside the grammar would become a destination path: refused before any glob sees it.
        if (typeof n !== 'string' || !isRepositoryName(n)) invalid.push(String(n));
        else if (match(n)) names.push(n);
      }
      const link = header(res, 'link');
      const next = link ? /<([^>]+)>/.exec(link)?.[1] : undefined;
      path = next ?? '';
    }
    return { upstream, ref, repositories: names.sort(), invalid };
  }

  private async tagsOf(upstream: Upstream, repository: string): Promise<string[]> {
    const out: string[] = [];
    let path = 'tags/list?n=1000';
    for (let page = 0; page < 100 && path; page++) {
      const res = await this.request(upstream, repository, 'GET', path);
      if (res.statusCode !== 200) throw await errorFrom(res, `tags of ${upstream.name}/${repository}`);
      const doc = await readJson<{ tags?: unknown }>(res, `tags of ${upstream.name}/${repository}`, 'tags');
      // Whatever the upstream put in the list is kept as text; the caller refuses what is not a tag.
      if (Array.isArray(doc.tags)) out.push(...(doc.tags as unknown[]).map(String));
      const link = header(res, 'link');
      const next = link ? /<([^>]+)>/.exec(link)?.[1] : undefined;
      path = next ? next.replace(/^.*\/tags\/list/, 'tags/list') : '';
    }
    return out;
  }

  /** Where a repository's images go: a local repository name, or a transport reference prefix. */
  private destinationName(upstream: Upstream, repository: string): string {
    return destinationName(this.config, upstream, repository);
  }

  private async destination(name: string, w: { tag?: string; digest?: Digest }): Promise<ImageDestination> {
    if (this.config.to)
      return openDestination(`${this.config.to.replace(/\/+$/, '')}/${name}${w.tag ? `:${w.tag}` : `@${w.digest}`}`, {
        ...(this.deps.destination ?? {}),
        pool: this.pool,
      });
    if (!isRepositoryName(name)) throw new Error(`${name} is not a valid repository name here`);
    return new StorageDestination(this.deps.repo(name), this.deps.blobs, {
      uploads: this.deps.uploads,
      claim: this.deps.claim,
      ...(w.tag ? { tag: w.tag } : {}),
      ...(this.deps.changed ? { onChange: this.deps.changed } : {}),
    });
  }

  /** Runs the job once: plans every step, and unless `dryRun`, carries it out. Runs of one job never overlap. */
  run(opts: RunOptions = {}): Promise<RunSummary> {
    const run = this.previous.then(async () => {
      const own = this.deps.pool === undefined;
      this.pool = this.deps.pool ?? new RegistryPool();
      try {
        return await this.runOnce(opts);
      } finally {
        if (own) await this.pool.close();
      }
    });
    this.previous = run.catch(() => undefined);
    return run;
  }

  private async runOnce(opts: RunOptions): Promise<RunSummary> {
    const startedAt = new Date();
    const state: JobState = await readState(this.deps.driver, this.name);
    const summary: RunSummary = {
      job: this.name,
      startedAt: startedAt.toISOString(),
      finishedAt: '',
      dryRun: Boolean(opts.dryRun),
      ok: true,
      copied: [],
      moved: [],
      unchanged: 0,
      pruned: [],
      refused: [],
      errors: [],
      requests: this.requests,
    };
    const progress = opts.progress;
    const step = (s: PlanStep) => {
      opts.onStep?.(s);
      if ((s.tag || s.digest) && s.action !== 'prune' && s.action !== 'copy' && s.action !== 'move')
        progress?.imageDone?.(`${s.image}${s.tag ? `:${s.tag}` : s.digest ? `@${s.digest}` : ''}`, s.action);
    };
    const platforms = this.config.platforms?.map(parsePlatform);
    // Listed tags need no tag list (skopeo's YAML names them); prune does, to tell what vanished upstream.
    const literal = this.config.prune ? undefined : literalTags(this.config.tags);
    // Look ahead, act in order: the tag lists and HEADs of the next repositories go out together (bounded),
    // so a run where nothing moved costs about one round of requests, not one per repository; steps follow
    // in the job's order. The look-ahead is a window, so a long run does not copy digests HEADed long before.
    const targets: ({ upstream: Upstream; repository: string } | { entry: string; error: Error })[] = [];
    for (const entry of this.config.images) {
      try {
        const { upstream, repositories, invalid } = await this.repositories(entry);
        for (const repository of repositories) targets.push({ upstream, repository });
        for (const n of invalid) {
          const reason = `upstream ${upstream.name} listed the invalid repository name ${quoteName(n)} in its catalog: skipped`;
          summary.refused.push({ image: entry, reason });
          step({ action: 'refused', image: entry, reason });
          this.deps.log.warn({ job: this.name, image: entry }, `sync ${this.name}: ${reason}`);
        }
      } catch (e) {
        targets.push({ entry, error: e as Error });
      }
    }
    const looks: (Look | undefined)[] = [];
    const lookAhead = (upTo: number): void => {
      for (let j = looks.length; j < Math.min(upTo, targets.length); j++) {
        const t = targets[j]!;
        looks.push('error' in t ? undefined : this.look(t.upstream, t.repository, literal, progress));
      }
    };
    let prunes = 0;
    for (let i = 0; i < targets.length; i++) {
      lookAhead(i + LOOK_AHEAD);
      const t = targets[i]!;
      if ('error' in t) {
        summary.errors.push({ image: t.entry, error: t.error.message });
        step({ action: 'error', image: t.entry, reason: t.error.message });
        continue;
      }
      const look = looks[i]!;
      const { upstream, repository, image, dest } = look;
      const found = await look.found;
      if (found instanceof Error) {
        summary.errors.push({ image, error: found.message });
        step({ action: 'error', image, reason: found.message });
        continue;
      }
      const { selected, upstreamTags, allowed, digests } = found;
      for (const r of found.refused) {
        summary.refused.push({
          image: r.tag ? `${image}:${r.tag}` : r.digest ? `${image}@${r.digest}` : image,
          reason: r.reason,
        });
        if (!r.tag && !r.digest)
          this.deps.log.warn({ job: this.name, image }, `sync ${this.name}: ${image}: ${r.reason}`);
        step({ action: 'refused', image, ...r });
      }
      const copies = limiter(this.config.parallel ?? IMAGES);
      await Promise.all(
        allowed.map((w, i) =>
          copies(async () => {
            const digest = digests[i]!;
            try {
              if (digest instanceof Error) throw digest;
              await this.one(
                upstream,
                repository,
                image,
                dest,
                { ...w, digest },
                state,
                summary,
                step,
                platforms,
                opts,
                startedAt,
              );
            } catch (e) {
              summary.errors.push({
                image: w.tag ? `${image}:${w.tag}` : `${image}@${w.digest}`,
                error: (e as Error).message,
              });
              step({ action: 'error', image, ...w, reason: (e as Error).message });
            }
          }),
        ),
      );
      // A destination outside the name grammar (a prefix that makes it too long) has nothing stored to prune.
      if (this.config.prune && !this.config.to && isRepositoryName(dest)) {
        const repo = this.deps.repo(dest as RepositoryName);
        const keep = new Set(selected);
        // Backups of moved tags are the job's own, kept until someone deletes them.
        const backups = this.config.backup ? backupPattern(this.config.backup) : undefined;
        for (const t of await repo.tags()) {
          if (keep.has(t) || /^sha256-/.test(t) || backups?.test(t)) continue;
          const why = upstreamTags.includes(t) ? 'left the selection' : 'vanished upstream';
          if (prunes >= this.config.maxprune) {
            step({
              action: 'prune',
              image,
              tag: t,
              reason: `would be pruned (${why}) but maxprune ${this.config.maxprune} is reached`,
            });
            continue;
          }
          prunes++;
          step({ action: 'prune', image, tag: t, destination: dest, reason: why });
          if (!opts.dryRun) {
            await repo.untag(t);
            delete state.tags[`${repository}:${t}`];
            this.deps.changed?.();
          }
          summary.pruned.push(`${dest}:${t}`);
        }
      }
    }
    summary.finishedAt = new Date().toISOString();
    summary.ok = summary.errors.length === 0;
    // Images copied side by side finish in any order; the summary lists them in a stable one.
    summary.copied.sort();
    summary.moved.sort();
    if (!opts.dryRun) {
      state.lastRun = summary;
      await this.save(state);
    }
    return summary;
  }

  /**
   * Starts finding out what a repository's selection is upstream (its tag list unless every tag is named, the
   * flows' verdicts, one HEAD per allowed tag); the requests share the run's bound with every other repository.
   */
  private look(
    upstream: Upstream,
    repository: string,
    literal: string[] | undefined,
    progress: RunProgress | undefined,
  ): Look {
    const image = `${upstream.name}/${repository}`;
    const found = (async (): Promise<Found> => {
      const listed = literal ? [] : await this.lookups(() => this.tagsOf(upstream, repository));
      // A tag outside the grammar would become a storage path (`../../other/_manifests/tags/v1`): never selected.
      const upstreamTags = listed.filter(isTag);
      const invalid = listed
        .filter((t) => !isTag(t))
        .map((t) => ({ reason: `upstream listed the invalid tag ${quoteName(t)}: skipped` }));
      const selected =
        literal ??
        selectTags(
          upstreamTags.filter((t) => !/^sha256-/.test(t)),
          this.config.tags,
        );
      const wanted: Wanted[] = [
        ...selected.map((tag) => ({ tag })),
        ...(this.config.digests ?? []).filter(isDigest).map((digest) => ({ digest })),
      ];
      progress?.images?.(wanted.length);
      const allowed: Wanted[] = [];
      const refused: Found['refused'] = [...invalid];
      for (const w of wanted) {
        const decision = decideFlow(this.deps.flows, {
          repository: image,
          ...(w.tag ? { tag: w.tag } : { digest: w.digest! }),
        });
        if (decision.allowed) allowed.push(w);
        else refused.push({ ...w, reason: decision.reason });
      }
      const digests = await Promise.all(
        allowed.map((w) => this.lookups(() => this.resolve(upstream, repository, image, w)).catch((e: Error) => e)),
      );
      return { selected, upstreamTags, allowed, refused, digests };
    })().catch((e: Error) => e);
    return { upstream, repository, image, dest: this.destinationName(upstream, repository), found };
  }

  /** Writes the job's state after any write under way (each write holds everything recorded so far). */
  private save(state: JobState): Promise<void> {
    const write = this.saving.then(() => writeState(this.deps.driver, this.name, state));
    this.saving = write.catch(() => undefined);
    return write;
  }

  /** The upstream digest of a wanted tag (one HEAD), or the pinned digest itself. */
  private async resolve(
    upstream: Upstream,
    repository: string,
    image: string,
    w: { tag?: string; digest?: Digest },
  ): Promise<Digest> {
    if (!w.tag) return w.digest!;
    const res = await this.request(upstream, repository, 'HEAD', `manifests/${encodeURIComponent(w.tag)}`, {
      accept: ACCEPT,
    });
    await res.body.dump();
    if (res.statusCode === 404) throw new Error(`HEAD ${image}:${w.tag} answered HTTP 404: no such tag upstream`);
    if (res.statusCode !== 200) throw new Error(`HEAD ${image}:${w.tag} answered HTTP ${res.statusCode}`);
    const d = header(res, 'docker-content-digest');
    if (!d || !isDigest(d)) throw new Error(`HEAD ${image}:${w.tag} named no digest`);
    return d;
  }

  private async one(
    upstream: Upstream,
    repository: string,
    image: string,
    dest: string,
    w: { tag?: string; digest: Digest },
    state: JobState,
    summary: RunSummary,
    step: (s: PlanStep) => void,
    platforms: ReturnType<typeof parsePlatform>[] | undefined,
    opts: RunOptions,
    now: Date,
  ): Promise<void> {
    const key = `${repository}:${w.tag ?? w.digest}`;
    const digest = w.digest;
    const previous = state.tags[key];
    const local = !this.config.to ? this.deps.repo(dest as RepositoryName) : undefined;
    const there = local
      ? w.tag
        ? (await local.resolveTag(w.tag)) === digest
        : await local.hasManifest(digest)
      : previous === digest;
    if (previous === digest && there) {
      summary.unchanged++;
      step({ action: 'unchanged', image, ...w, reason: 'upstream has not moved' });
      return;
    }
    const moved = previous !== undefined && previous !== digest;
    const what = `${dest}:${w.tag ?? w.digest}`;
    const source = `${image}${w.tag ? `:${w.tag}` : `@${digest}`}`;
    const planned = {
      action: moved ? 'move' : 'copy',
      image,
      ...(w.tag ? { tag: w.tag } : {}),
      digest,
      ...(moved ? { previous } : {}),
      destination: what,
    } as const;
    const src = new RegistrySource(
      { registry: upstream.name, repository, digest },
      { ...upstream.options, pool: this.pool },
    );
    const trusted = this.deps.trust?.ruleFor(image, 'mirror');
    try {
      // Signatures are judged before the step is announced (in a dry run too), so each tag gets one verdict:
      // a plan never says `copy` for what the run then refuses.
      // A signature, attestation or SBOM the job names (by digest) is evidence, not an image to judge.
      if (trusted && !isEvidenceBytes((await src.getManifest()).bytes)) {
        const verdict = await this.deps.trust!.check(src, image, 'mirror', digest, source);
        if (!verdict.allowed) {
          summary.refused.push({ image: `${image}:${w.tag ?? w.digest}`, reason: verdict.reason });
          step({ action: 'refused', image, ...w, reason: verdict.reason });
          return;
        }
      }
      step({
        ...planned,
        reason: moved ? `upstream moved from ${previous}` : previous ? 'missing at the destination' : 'new',
      });
      if (opts.dryRun) {
        (moved ? summary.moved : summary.copied).push(what);
        opts.progress?.imageDone?.(source, planned.action);
        return;
      }
      if (moved && this.config.backup && local && w.tag) {
        const old = await local.resolveTag(w.tag);
        if (old) await local.tag(backupTag(this.config.backup, w.tag, now), old);
      }
      const dst = await this.destination(dest, w);
      const blobs = opts.progress?.copying?.(source, what);
      try {
        await copyImage(src, dst, {
          ...(platforms ? { platforms, rewriteIndex: this.config.rewriteindex ?? false } : { all: true }),
          // A signature the job was asked to check travels with the image, so pulls at the destination can check it too.
          withReferrers: (this.config.referrers ?? false) || trusted !== undefined,
          ...(trusted ? { evidenceOnly: true } : {}),
          ...(blobs ? { progress: blobs } : {}),
        });
        await dst.commit();
      } finally {
        await dst.close();
      }
    } finally {
      await src.close();
    }
    state.tags[key] = digest;
    // Saved after every image, so a run killed midway resumes where it stopped.
    await this.save(state);
    (moved ? summary.moved : summary.copied).push(what);
    opts.progress?.imageDone?.(source, planned.action);
    this.deps.log.info(
      { job: this.name, image, tag: w.tag, digest, destination: what },
      `sync ${this.name}: ${moved ? 'followed a moved tag' : 'copied'} ${image}:${w.tag ?? w.digest}`,
    );
  }
}
