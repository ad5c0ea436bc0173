import { parseDuration } from '../config/duration.js';
import { readPulls } from '../gc/pulls.js';
import type { RepositoryName } from '../oci/name.js';
import { decideFlow, flowLabel } from '../policy/flows.js';
import type { RegistryContext } from '../registry/context.js';
import type { RunSummary } from '../sync/state.js';
import type { KindOf } from './repo-kind.js';

/** Where a cached or mirrored image came from and why it was let in. */
export interface Provenance {
  kind: 'cache' | 'mirror';
  /** The upstream image name (`docker.io/library/nginx`). */
  image?: string;
  upstream?: string;
  url?: string;
  /** The flow rule that lets the image in now, and its one-line reason (as `sluice policy explain` says it). */
  flow?: { allowed: boolean; rule?: string; reason: string };
  fetchedAt?: string;
  lastPulledAt?: string;
  /** The cache re-checks a tag with upstream once this has passed; until then it serves what it has. */
  recheckAfter?: string;
  /** True when the tag is past its re-check time: the next pull asks upstream (and serves this copy if upstream fails). */
  due?: boolean;
  job?: string;
  lastRun?: Pick<RunSummary, 'startedAt' | 'finishedAt' | 'ok'> & { copied: number; refused: number; errors: number };
}

/** The provenance of `repository:tag`, or undefined for a local repository. */
export async function provenanceOf(
  ctx: RegistryContext,
  name: RepositoryName,
  tag: string | undefined,
  kind: KindOf,
): Promise<Provenance | undefined> {
  if (kind.kind === 'mirror' && kind.job) {
    // Loaded here, not at the top: a registry without mirrors or a cache loads none of their code.
    const { readState } = await import('../sync/state.js');
    const state = await readState(ctx.driver, kind.job).catch(() => undefined);
    const r = state?.lastRun;
    const lastRun = r
      ? {
          startedAt: r.startedAt,
          finishedAt: r.finishedAt,
          ok: r.ok,
          copied: r.copied.length,
          refused: r.refused.length,
          errors: r.errors.length,
        }
      : undefined;
    return { kind: 'mirror', job: kind.job, image: name, ...flowOf(ctx, name, tag), ...(lastRun ? { lastRun } : {}) };
  }
  if (kind.kind !== 'cache' || !ctx.cache) return undefined;
  const first = name.split('/')[0]!;
  const upstream = ctx.cache.upstreams.byPrefix(first);
  const image = upstream ? `${upstream.name}${name.slice(first.length)}` : name;
  const out: Provenance = {
    kind: 'cache',
    image,
    ...(upstream ? { upstream: upstream.name, url: upstream.url } : {}),
    ...flowOf(ctx, image, tag),
  };
  if (tag !== undefined) {
    const { TagState } = await import('../proxy/tag-state.js');
    const [rec, pulls] = await Promise.all([
      new TagState(ctx.driver, false).read(name, tag).catch(() => null),
      readPulls(ctx.driver, name as RepositoryName).catch(() => undefined),
    ]);
    const pulled = pulls?.tags.get(tag);
    if (pulled) out.lastPulledAt = new Date(pulled).toISOString();
    if (rec) {
      out.fetchedAt = rec.fetchedAt;
      const fetched = Date.parse(rec.fetchedAt);
      if (upstream && Number.isFinite(fetched)) {
        const at = fetched + (flowTtl(ctx, image, tag) ?? upstream.ttlMs);
        out.recheckAfter = new Date(at).toISOString();
        out.due = at < Date.now();
      }
    }
  }
  return out;
}

/** A flow rule's own `ttl`, which wins over its upstream's, as the cache reads it. */
function flowTtl(ctx: RegistryContext, image: string, tag: string): number | undefined {
  const d = ctx.cache ? decideFlow(ctx.cache.flows, { repository: image, tag }) : undefined;
  return d?.flow?.spec.ttl ? parseDuration(d.flow.spec.ttl) : undefined;
}

function flowOf(ctx: RegistryContext, image: string, tag: string | undefined): Pick<Provenance, 'flow'> {
  const flows = ctx.cache?.flows;
  if (!flows) return {};
  const d = decideFlow(flows, { repository: image, ...(tag !== undefined ? { tag } : {}) });
  return { flow: { allowed: d.allowed, ...(d.flow ? { rule: flowLabel(d.flow) } : {}), reason: d.reason } };
}
