// The requests a mirror job sends upstream itself (catalog pages, tag lists, HEADs), within its rate cap.
import { setTimeout as sleep } from 'node:timers/promises';
import picomatch from 'picomatch';
import { parseDuration } from '../config/duration.js';
import { type Digest, isDigest } from '../oci/digest.js';
import { MANIFEST_MEDIA_TYPES } from '../oci/mediatypes.js';
import { isRepositoryName } from '../oci/name.js';
import { parseReference, type Reference } from '../oci/reference.js';
import {
  apiHost,
  type ClientResponse,
  errorFrom,
  header,
  RegistryClient,
  readJson,
} from '../transport/registry-client.js';
import type { Upstream } from '../upstream/upstreams.js';
import type { JobContext } from './job-context.js';

const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');
const GLOB = /[*?[{]/;

function remaining(res: ClientResponse): number | undefined {
  const v = header(res, 'ratelimit-remaining');
  if (!v) return undefined;
  const n = Number(v.split(';')[0]);
  return Number.isFinite(n) ? n : undefined;
}

/** Sends one request of the job's own (tag lists, HEADs), within its rate cap and the RateLimit floor. */
async function request(
  ctx: JobContext,
  upstream: Upstream,
  repository: string,
  method: 'GET' | 'HEAD',
  path: string,
  headers: Record<string, string> = {},
): Promise<ClientResponse> {
  const rl = ctx.config.ratelimit;
  for (let attempt = 0; ; attempt++) {
    if (rl?.rps) {
      // Each request takes the next free slot, so HEADs sent together still keep to the rate.
      const at = Math.max(Date.now(), ctx.nextRequestAt);
      ctx.nextRequestAt = at + 1000 / rl.rps;
      if (at > Date.now()) await sleep(at - Date.now());
    }
    ctx.requests[method] = (ctx.requests[method] ?? 0) + 1;
    const repoPath = repository.split('/').map(encodeURIComponent).join('/');
    const res = await upstream.limit(() =>
      client(ctx, upstream, repository).send({ method, path: `/v2/${repoPath}/${path}`, headers }),
    );
    const left = remaining(res);
    // Below the floor: wait for the window to move instead of spending the last requests
    // (Docker Hub does not count HEADs).
    if (rl && left !== undefined && left < rl.min && attempt < 100) {
      await res.body.dump();
      const wait = parseDuration(rl.retry);
      ctx.deps.log.warn(
        { job: ctx.name, remaining: left, floor: rl.min, waitMs: wait },
        `sync ${ctx.name}: upstream rate limit below the floor; waiting`,
      );
      await sleep(wait);
      continue;
    }
    return res;
  }
}

/**
 * A client for one upstream repository on the run's shared connections (the same host the copy's source uses, so
 * one ping serves both).
 */
function client(ctx: JobContext, upstream: Upstream, repository: string): RegistryClient {
  return new RegistryClient(apiHost(upstream.name), repository ? [`repository:${repository}:pull`] : [], {
    ...upstream.options,
    pool: ctx.pool,
  });
}

/** Repositories an image entry names: itself, or (a glob) the matching names of the upstream's catalog. */
export async function repositoriesOf(
  ctx: JobContext,
  entry: string,
): Promise<{ upstream: Upstream; ref: Reference; repositories: string[]; invalid: string[] }> {
  const host = entry.split('/')[0]!;
  if (!GLOB.test(entry)) {
    const ref = parseReference(entry);
    return {
      upstream: ctx.deps.upstreams.orDefault(ref.registry),
      ref,
      repositories: [ref.repository],
      invalid: [],
    };
  }
  const ref = parseReference(`${host}/placeholder`);
  const upstream = ctx.deps.upstreams.orDefault(ref.registry);
  const pattern = entry.slice(host.length + 1);
  const match = picomatch(pattern);
  const names: string[] = [];
  const invalid: string[] = [];
  let path = '/v2/_catalog?n=1000';
  for (let page = 0; page < 100 && path; page++) {
    ctx.requests.GET = (ctx.requests.GET ?? 0) + 1;
    const res = await upstream.limit(() =>
      client(ctx, upstream, '').send({ method: 'GET', path, scopes: ['registry:catalog:*'] }),
    );
    if (res.statusCode !== 200) {
      const err = await errorFrom(res, `catalog of ${upstream.name}`);
      const advice = 'name its repositories one by one';
      throw new Error(
        `${entry}: upstream ${upstream.name} offers no catalog to expand the glob (${err.message}); ${advice}`,
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

/** Every tag an upstream repository lists, page by page, kept as text (the caller refuses what is not a tag). */
export async function tagsOf(ctx: JobContext, upstream: Upstream, repository: string): Promise<string[]> {
  const out: string[] = [];
  let path = 'tags/list?n=1000';
  for (let page = 0; page < 100 && path; page++) {
    const res = await request(ctx, upstream, repository, 'GET', path);
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

/** The upstream digest of a wanted tag (one HEAD), or the pinned digest itself. */
export async function resolveDigest(
  ctx: JobContext,
  upstream: Upstream,
  repository: string,
  image: string,
  w: { tag?: string; digest?: Digest },
): Promise<Digest> {
  if (!w.tag) return w.digest!;
  const res = await request(ctx, upstream, repository, 'HEAD', `manifests/${encodeURIComponent(w.tag)}`, {
    accept: ACCEPT,
  });
  await res.body.dump();
  if (res.statusCode === 404) throw new Error(`HEAD ${image}:${w.tag} answered HTTP 404: no such tag upstream`);
  if (res.statusCode !== 200) throw new Error(`HEAD ${image}:${w.tag} answered HTTP ${res.statusCode}`);
  const d = header(res, 'docker-content-digest');
  if (!d || !isDigest(d)) throw new Error(`HEAD ${image}:${w.tag} named no digest`);
  return d;
}
