import type { FastifyReply, FastifyRequest } from 'fastify';
import { OciError } from '../oci/errors.js';
import { effectiveArtifactType, parseManifest, type Manifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { RepositoryName } from '../oci/name.js';
import { requireDigest } from './blob-routes.js';
import type { RegistryContext } from './context.js';

/** Takes one page of a sorted list after `last`, `n` at most. */
export function paginate(
  all: string[],
  n: number | undefined,
  last: string | undefined,
): { page: string[]; more: boolean } {
  let start = 0;
  if (last !== undefined) {
    // Binary search: the first entry strictly after `last`.
    let lo = 0;
    let hi = all.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (all[mid]! <= last) lo = mid + 1;
      else hi = mid;
    }
    start = lo;
  }
  const end = n === undefined ? all.length : Math.min(all.length, start + n);
  return { page: all.slice(start, end), more: end < all.length };
}

function pageParams(req: FastifyRequest): { n: number | undefined; last: string | undefined } {
  const q = req.query as Record<string, string | undefined>;
  let n: number | undefined;
  if (q.n !== undefined && q.n !== '') {
    n = Number(q.n);
    if (!Number.isSafeInteger(n) || n < 0)
      throw new OciError('PAGINATION_NUMBER_INVALID', `invalid page size n=${q.n}`);
  }
  return { n, last: q.last === '' ? undefined : q.last };
}

function linkHeader(base: string, n: number | undefined, lastItem: string): string {
  const params = new URLSearchParams();
  if (n !== undefined) params.set('n', String(n));
  params.set('last', lastItem);
  return `<${base}?${params.toString()}>; rel="next"`;
}

/** GET of a repository's tags, paginated with `n`, `last` and a `Link` header; `source` replaces the stored list (a cache's). */
export async function listTags(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  name: RepositoryName,
  source?: () => Promise<string[]>,
): Promise<void> {
  await ctx.authorize(req, { repository: name, actions: ['pull'] });
  const { n, last } = pageParams(req);
  const repo = ctx.repo(name);
  const tags = source ? await source() : await repo.tags();
  if (tags.length === 0 && !(await repo.exists()))
    throw new OciError('NAME_UNKNOWN', `repository ${name} is not known`, { name });
  const { page, more } = paginate(tags, n, last);
  if (more && page.length > 0) reply.header('link', linkHeader(`/v2/${name}/tags/list`, n, page[page.length - 1]!));
  reply
    .code(200)
    .header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify({ name, tags: page }));
}

/** GET of the catalog, filtered by what the caller may list, paginated like tags. */
export async function listCatalog(ctx: RegistryContext, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  await ctx.authorize(req, { actions: ['list'] });
  const { n, last } = pageParams(req);
  let all = await ctx.catalog.all();
  if (ctx.catalogFilter) all = await ctx.catalogFilter(req, all);
  const { page, more } = paginate(all, n, last);
  if (more && page.length > 0) reply.header('link', linkHeader('/v2/_catalog', n, page[page.length - 1]!));
  reply
    .code(200)
    .header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify({ repositories: page }));
}

/** GET of the referrers of a digest: an image index of descriptors, optionally filtered by artifactType. */
export async function listReferrers(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  name: RepositoryName,
  digestText: string,
): Promise<void> {
  const subject = requireDigest(digestText);
  await ctx.authorize(req, { repository: name, actions: ['pull'], reference: subject });
  const q = req.query as Record<string, string | undefined>;
  const filter = q.artifactType;
  const repo = ctx.repo(name);
  // Revisions written by another registry into this root have no `_referrers` link yet: scan them.
  await ctx.scanner.refresh(repo);
  const candidates = new Set([...(await repo.referrers(subject)), ...ctx.scanner.referrersOf(name, subject)]);
  const manifests: Descriptor[] = [];
  for (const d of candidates) {
    const stored = await repo.getManifest(d);
    if (!stored) continue;
    let m: Manifest;
    try {
      m = parseManifest(stored.bytes);
    } catch {
      continue;
    }
    if (m.subject?.digest !== subject) continue;
    const desc: Descriptor = { mediaType: m.mediaType, digest: d, size: stored.bytes.length };
    const at = effectiveArtifactType(m);
    if (at) desc.artifactType = at;
    if (m.annotations) desc.annotations = m.annotations;
    if (filter !== undefined && desc.artifactType !== filter) continue;
    manifests.push(desc);
  }
  manifests.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  if (filter !== undefined) reply.header('oci-filters-applied', 'artifactType');
  // A Buffer, so that Fastify adds no `; charset=utf-8` to the media type the spec prescribes.
  reply
    .code(200)
    .header('content-type', MediaType.OciIndex)
    .send(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests })));
}
