import type { FastifyInstance } from 'fastify';
import { lifecycleOf, type Lifecycle } from '../gc/lifecycle.js';
import { markStorage } from '../gc/mark.js';
import type { ManifestFacts, UnreadableManifest } from '../gc/facts.js';
import { sizeBlobs } from '../gc/measure.js';
import { judgeLifecycle, type LifecycleVerdict } from '../gc/retention.js';
import { usageOf, type RepositoryUsage } from '../gc/usage.js';
import type { Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { RegistryContext } from '../registry/context.js';
import type { Admins } from './admin.js';
import { json, route, textParam } from './api-reply.js';
import { pageOf, parseListQuery } from './list-query.js';

/** The most tags one repository row lists per verdict; the counts are whole. */
const TAGS_LISTED = 200;

/** A reading of the whole storage is reused this long: it walks every repository and stats every blob. */
const FRESH_MS = 30_000;

/** What the collector's next pass would make of the storage: bytes per repository and a verdict per tag. */
interface Reading {
  at: number;
  usage: RepositoryUsage[];
  verdicts: Map<string, LifecycleVerdict[]>;
}

/**
 * Reads the storage as `sluice du` and the collector do (mark, sizes, retention and eviction verdicts), at most
 * once per FRESH_MS and one reading at a time; manifests and sizes are content-addressed, so they are kept.
 */
class LifecycleReader {
  private last: Reading | undefined;
  private reading: Promise<Reading> | undefined;
  private readonly manifests = new Map<Digest, ManifestFacts | UnreadableManifest>();
  private sizes = new Map<Digest, number>();

  constructor(
    private readonly ctx: RegistryContext,
    private readonly lifecycle: Lifecycle,
  ) {}

  get(): Promise<Reading> {
    if (this.last && Date.now() - this.last.at < FRESH_MS) return Promise.resolve(this.last);
    this.reading ??= this.read().finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async read(): Promise<Reading> {
    const deleteUntagged = this.ctx.config.storage.gc?.deleteuntagged ?? false;
    const facts = await markStorage(this.ctx.driver, this.manifests);
    this.sizes = await sizeBlobs(this.ctx.driver, facts.blobs, this.sizes);
    const usage = usageOf(facts, this.sizes, { deleteUntagged });
    const judged = await judgeLifecycle(this.ctx.driver, facts, this.lifecycle, {
      now: Date.now(),
      deleteUntagged,
      sizes: this.sizes,
    });
    const verdicts = new Map<string, LifecycleVerdict[]>();
    for (const v of judged.verdicts) {
      if (v.tag === undefined) continue;
      const list = verdicts.get(v.repository) ?? [];
      list.push(v);
      verdicts.set(v.repository, list);
    }
    this.last = { at: Date.now(), usage, verdicts };
    return this.last;
  }
}

/** Whether the config asks for a lifecycle (retention rules or cache eviction); never throws. */
export function hasLifecycle(ctx: RegistryContext): boolean {
  try {
    return lifecycleOf(ctx.config) !== undefined;
  } catch {
    return false;
  }
}

/**
 * `GET /api/v1/lifecycle`: bytes per repository and, per tag, what retention or eviction deletes at the next
 * collection and why, as the collector would judge now. Only repositories the caller may pull are listed or
 * counted; how much of a repository is shared with others is told to administrators only, since the others
 * may be hidden from the caller.
 */
export function registerLifecycleRoutes(app: FastifyInstance, ctx: RegistryContext, admins: Admins): void {
  const lifecycle = hasLifecycle(ctx) ? lifecycleOf(ctx.config) : undefined;
  const reader = lifecycle ? new LifecycleReader(ctx, lifecycle) : undefined;
  app.get(
    '/api/v1/lifecycle',
    route(async (req, reply) => {
      if (!reader)
        throw new OciError('UNSUPPORTED', 'no retention rules or cache eviction are configured', undefined, 404);
      const q = req.query as Record<string, unknown>;
      const lq = parseListQuery(q, ['size']);
      const { admin } = await admins.caller(req);
      const reading = await reader.get();
      const names = reading.usage.map((u) => u.repository);
      const visible = new Set(ctx.catalogFilter ? await ctx.catalogFilter(req, names) : names);
      let rows = reading.usage.filter((u) => visible.has(u.repository));
      if (lq.q) rows = rows.filter((u) => u.repository.toLowerCase().includes(lq.q));
      // Largest first unless asked for `order=asc`.
      if (textParam(q, 'order') === 'asc') rows = rows.slice().reverse();
      const page = pageOf(rows, lq);
      const items = page.items.map((u) => {
        const verdicts = reading.verdicts.get(u.repository) ?? [];
        const deleting = verdicts.filter((v) => !v.kept);
        return {
          repository: u.repository,
          bytes: u.bytes,
          ...(admin ? { exclusive: u.exclusive, shared: u.shared } : {}),
          governed: verdicts.length > 0,
          kept: verdicts.length - deleting.length,
          deleting: deleting.slice(0, TAGS_LISTED).map((v) => ({ tag: v.tag, digest: v.digest, reason: v.reason })),
          keptBy: verdicts
            .filter((v) => v.kept)
            .slice(0, TAGS_LISTED)
            .map((v) => ({ tag: v.tag, reason: v.reason })),
        };
      });
      json(reply, { ...page, items, readAt: new Date(reading.at).toISOString() });
    }),
  );
}
