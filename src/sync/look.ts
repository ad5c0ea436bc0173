// A repository's look-up upstream: its tags, the selection, the flows' verdicts and each allowed tag's digest.
import { type Digest, isDigest } from '../oci/digest.js';
import { isTag, quoteName } from '../oci/name.js';
import { decideFlow } from '../policy/flows.js';
import type { Upstream } from '../upstream/upstreams.js';
import { destinationName } from './destination.js';
import type { JobContext } from './job-context.js';
import type { RunProgress } from './job-types.js';
import { selectTags } from './select.js';
import { resolveDigest, tagsOf } from './upstream-requests.js';

/** An image a job wants: a tag to follow, or a pinned digest. */
export type Wanted = { tag?: string; digest?: Digest };

/**
 * What a repository's selection is upstream: the tags chosen, the flows' verdicts, each allowed tag's digest
 * (or why not).
 */
export interface Found {
  selected: string[];
  /** The upstream's tags, when they were listed (prune tells "vanished" from "left the selection" by them). */
  upstreamTags: string[];
  allowed: Wanted[];
  refused: (Wanted & { reason: string })[];
  digests: (Digest | Error)[];
}

/** One repository of a run, with its look-up under way (an Error when its tag list failed). */
export interface Look {
  upstream: Upstream;
  repository: string;
  image: string;
  dest: string;
  found: Promise<Found | Error>;
}

/**
 * Starts finding out what a repository's selection is upstream (its tag list unless every tag is named, the
 * flows' verdicts, one HEAD per allowed tag); the requests share the run's bound with every other repository.
 */
export function look(
  ctx: JobContext,
  upstream: Upstream,
  repository: string,
  literal: string[] | undefined,
  progress: RunProgress | undefined,
): Look {
  const image = `${upstream.name}/${repository}`;
  const found = (async (): Promise<Found> => {
    const listed = literal ? [] : await ctx.lookups(() => tagsOf(ctx, upstream, repository));
    // A tag outside the grammar would become a storage path (`../../other/_manifests/tags/v1`): never selected.
    const upstreamTags = listed.filter(isTag);
    const invalid = listed
      .filter((t) => !isTag(t))
      .map((t) => ({ reason: `upstream listed the invalid tag ${quoteName(t)}: skipped` }));
    const selected =
      literal ??
      selectTags(
        upstreamTags.filter((t) => !/^sha256-/.test(t)),
        ctx.config.tags,
      );
    const wanted: Wanted[] = [
      ...selected.map((tag) => ({ tag })),
      ...(ctx.config.digests ?? []).filter(isDigest).map((digest) => ({ digest })),
    ];
    progress?.images?.(wanted.length);
    const allowed: Wanted[] = [];
    const refused: Found['refused'] = [...invalid];
    for (const w of wanted) {
      const decision = decideFlow(ctx.deps.flows, {
        repository: image,
        ...(w.tag ? { tag: w.tag } : { digest: w.digest! }),
      });
      if (decision.allowed) allowed.push(w);
      else refused.push({ ...w, reason: decision.reason });
    }
    const digests = await Promise.all(
      allowed.map((w) => ctx.lookups(() => resolveDigest(ctx, upstream, repository, image, w)).catch((e: Error) => e)),
    );
    return { selected, upstreamTags, allowed, refused, digests };
  })().catch((e: Error) => e);
  return { upstream, repository, image, dest: destinationName(ctx.config, upstream, repository), found };
}
