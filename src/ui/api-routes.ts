import type { FastifyInstance, FastifyRequest } from 'fastify';
import { OciError } from '../oci/errors.js';
import { isDigest } from '../oci/digest.js';
import { isRepositoryName, isTag, type RepositoryName } from '../oci/name.js';
import type { RegistryContext } from '../registry/context.js';
import { deleteManifest } from '../registry/manifest-routes.js';
import { registryHost } from '../registry/registry-name.js';
import { badRequest, json, route } from './api-reply.js';
import { imageDetail } from './image-detail.js';
import { compareBy, pageOf, parseListQuery } from './list-query.js';
import { provenanceOf } from './provenance.js';
import type { RepositoryKinds, RepositoryKind } from './repo-kind.js';
import type { TrustViews } from './signatures.js';
import { sortedRows, type TagRow, type TagTables } from './tag-table.js';

/** What the API routes read: the registry's context and the UI's caches. */
export interface ApiDeps {
  ctx: RegistryContext;
  tables: TagTables;
  kinds: RepositoryKinds;
  trust: TrustViews;
  /** The caller's own decisions on a repository, for the "why" panel (see explain.ts). */
  explain(req: FastifyRequest, repository: RepositoryName, reference: string | undefined): Promise<unknown>;
  /** Whether the caller may delete tags of a repository (policy, `storage.delete`, not read-only); never throws. */
  mayDelete(req: FastifyRequest, repository: RepositoryName): Promise<boolean>;
}

/** How long a repository row waits for its tag table before answering without sizes (built on in the background). */
const ROW_BUDGET_MS = 300;
/** The repository walk is reused this long; older, it is refreshed behind the answer. */
const NAMES_FRESH_MS = 5_000;

const REPO_SORTS = ['name'] as const;
const TAG_SORTS = ['name', 'pushed', 'size', 'pulled'] as const;

/** The `repository=` parameter, checked against the name grammar before it touches a path. */
function repositoryParam(q: Record<string, unknown>): RepositoryName {
  const v = q['repository'];
  if (typeof v !== 'string' || !isRepositoryName(v))
    throw new OciError('NAME_INVALID', 'repository= must be a repository name');
  return v;
}

/** Repository names, walked at most every few seconds and served from the last walk meanwhile. */
class RepositoryNames {
  private last: { at: number; names: string[]; ms: number } | undefined;
  private walking: Promise<string[]> | undefined;

  constructor(private readonly ctx: RegistryContext) {}

  async all(): Promise<string[]> {
    if (this.last && Date.now() - this.last.at > Math.max(NAMES_FRESH_MS, 20 * this.last.ms))
      this.walk().catch(() => undefined);
    return this.last ? this.last.names : this.walk();
  }

  private walk(): Promise<string[]> {
    const started = Date.now();
    this.walking ??= this.ctx.catalog
      .all()
      .then((names) => {
        this.last = { at: Date.now(), names, ms: Date.now() - started };
        return names;
      })
      .finally(() => (this.walking = undefined));
    return this.walking;
  }

  /** After a push: a repository the last walk did not see is walked for on the next request. */
  changed(repository: string): void {
    if (this.last && !this.last.names.includes(repository)) this.last.at = 0;
  }
}

/** Pull commands for the clients people copy them into, by tag and by digest. */
export function pullCommands(
  host: string,
  repository: string,
  tag: string | undefined,
  digest: string,
): Record<string, Record<string, string>> {
  const byTag = tag === undefined ? undefined : `${host}/${repository}:${tag}`;
  const byDigest = `${host}/${repository}@${digest}`;
  const of = (ref: string) => ({
    docker: `docker pull ${ref}`,
    podman: `podman pull ${ref}`,
    nerdctl: `nerdctl pull ${ref}`,
    crane: `crane pull ${ref} image.tar`,
  });
  return { ...(byTag ? { tag: of(byTag) } : {}), digest: of(byDigest) };
}

/** The registry's name in pull commands: `http.host`, else the Host the page was asked under when it is a plain host. */
function pullHost(ctx: RegistryContext, req: FastifyRequest): string {
  const configured = registryHost(ctx.config);
  if (configured) return configured;
  const h = req.headers.host ?? '';
  return /^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$|^\[[0-9a-fA-F:]{2,45}\](:\d{1,5})?$/.test(h) ? h : 'localhost:5000';
}

/** Registers the JSON API of the UI under `/api/v1/` (see docs/api.md). */
export function registerApiRoutes(app: FastifyInstance, deps: ApiDeps): { changed(repository?: string): void } {
  const { ctx, tables, kinds } = deps;
  const names = new RepositoryNames(ctx);

  app.get(
    '/api/v1/repositories',
    route(async (req, reply) => {
      const query = req.query as Record<string, unknown>;
      const lq = parseListQuery(query, REPO_SORTS);
      const kind = query['kind'];
      if (kind !== undefined && kind !== 'local' && kind !== 'cache' && kind !== 'mirror')
        badRequest('kind= must be local, cache or mirror');
      // Only names the caller may pull exist for it: they are filtered before anything is counted.
      let visible = await names.all();
      if (ctx.catalogFilter) visible = await ctx.catalogFilter(req, visible);
      let rows = lq.q ? visible.filter((n) => n.toLowerCase().includes(lq.q)) : visible;
      if (kind) rows = rows.filter((n) => kinds.of(n).kind === (kind as RepositoryKind));
      if (lq.desc) rows = rows.slice().reverse();
      const page = pageOf(rows, lq);
      const items = await Promise.all(
        page.items.map(async (name) => {
          const k = kinds.of(name);
          const table =
            tables.peek(name as RepositoryName) ??
            (await Promise.race([tables.get(name as RepositoryName).catch(() => undefined), sleep(ROW_BUDGET_MS)]));
          const summary = table
            ? { tags: table.rows.length, size: table.size, ...(table.lastPush ? { lastPush: table.lastPush } : {}) }
            : { pending: true };
          return { name, ...k, ...summary };
        }),
      );
      json(reply, { ...page, items });
    }),
  );

  app.get(
    '/api/v1/tags',
    route(async (req, reply) => {
      const query = req.query as Record<string, unknown>;
      const name = repositoryParam(query);
      await ctx.authorize(req, { repository: name, actions: ['pull'] });
      const lq = parseListQuery(query, TAG_SORTS);
      const platform = query['platform'];
      if (platform !== undefined && (typeof platform !== 'string' || platform.length > 100))
        badRequest('platform= must be one platform such as linux/amd64');
      const table = await tables.get(name);
      if (table.rows.length === 0 && !(await ctx.repo(name).exists()))
        throw new OciError('NAME_UNKNOWN', `repository ${name} is not known`, { name });
      const key: Record<string, (r: TagRow) => string | number | undefined> = {
        name: (r) => r.tag,
        pushed: (r) => r.pushed,
        size: (r) => r.size,
        pulled: (r) => r.lastPulled,
      };
      let rows = sortedRows(table, `${lq.sort} ${lq.desc}`, compareBy(key[lq.sort]!, lq.desc));
      if (lq.q) rows = rows.filter((r) => r.tag.toLowerCase().includes(lq.q));
      if (platform) rows = rows.filter((r) => r.platforms.some((p) => p.platform === platform));
      const page = pageOf(rows, lq);
      const items = await Promise.all(
        page.items.map(async (r) => ({
          ...r,
          trust: await deps.trust
            .of(name, r.digest, r.tag)
            .catch((e: unknown) => ({ state: 'refused', reason: (e as Error).message, signatures: [] })),
        })),
      );
      const platforms = platformsOf(table);
      const mayDelete = await deps.mayDelete(req, name);
      json(reply, { repository: name, ...kinds.of(name), size: table.size, platforms, mayDelete, ...page, items });
    }),
  );

  app.get(
    '/api/v1/explain',
    route(async (req, reply) => {
      const query = req.query as Record<string, unknown>;
      const name = repositoryParam(query);
      const reference = query['reference'];
      if (reference !== undefined && (typeof reference !== 'string' || !(isTag(reference) || isDigest(reference))))
        badRequest('reference= must be a tag or a digest');
      // Only what the caller may pull is explained: a refusal here is the registry's own, with its reason.
      await ctx.authorize(req, { repository: name, actions: ['pull'] });
      json(reply, await deps.explain(req, name, reference as string | undefined));
    }),
  );

  // The registry's own tag delete (`DELETE /v2/<name>/manifests/<tag>`): the same decision, checks and event.
  app.delete(
    '/api/v1/tags',
    route(async (req, reply) => {
      const query = req.query as Record<string, unknown>;
      const name = repositoryParam(query);
      const tag = query['tag'];
      if (typeof tag !== 'string' || !isTag(tag)) badRequest('tag= must be a tag');
      try {
        await deleteManifest(ctx, req, reply, name, tag);
      } finally {
        tables.invalidate(name);
      }
    }),
  );

  app.get(
    '/api/v1/image',
    route(async (req, reply) => {
      const query = req.query as Record<string, unknown>;
      const name = repositoryParam(query);
      const reference = query['reference'];
      if (typeof reference !== 'string' || !(isTag(reference) || isDigest(reference)))
        badRequest('reference= must be a tag or a digest');
      await ctx.authorize(req, { repository: name, actions: ['pull'], reference });
      const detail = await imageDetail(ctx, name, reference);
      if (!detail) throw new OciError('MANIFEST_UNKNOWN', `manifest ${reference} is not known to repository ${name}`);
      const tag = isDigest(reference) ? undefined : reference;
      const kind = kinds.of(name);
      const [trust, provenance] = await Promise.all([
        deps.trust.of(name, detail.digest, tag),
        provenanceOf(ctx, name, tag, kind),
      ]);
      const host = pullHost(ctx, req);
      json(reply, {
        ...detail,
        source: kind,
        trust,
        ...(provenance ? { provenance } : {}),
        pull: pullCommands(host, name, tag, detail.digest),
      });
    }),
  );

  return {
    changed(repository?: string) {
      if (repository === undefined) return;
      names.changed(repository);
      tables.invalidate(repository);
    },
  };
}

const platformLists = new WeakMap<object, string[]>();

/** Every platform a table's rows name, for the filter; worked out once per table. */
function platformsOf(table: { rows: TagRow[] }): string[] {
  let list = platformLists.get(table);
  if (!list) {
    list = [...new Set(table.rows.flatMap((r) => r.platforms.map((p) => p.platform)))].sort();
    platformLists.set(table, list);
  }
  return list;
}

function sleep(ms: number): Promise<undefined> {
  return new Promise((r) => setTimeout(() => r(undefined), ms).unref());
}
