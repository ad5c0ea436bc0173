// Lists a cache repository's tags: upstream's that the flows allow, with the cached ones.
import { isTag } from '../oci/name.js';
import { decideFlow } from '../policy/flows.js';
import { readJson } from '../transport/registry-client.js';
import { upstreamRequest, type CacheState } from './cache-state.js';
import type { CacheTarget } from './names.js';

/** Tags of a cache repository: upstream's the flows allow, and the cached ones (only those if upstream fails). */
export async function listTags(s: CacheState, t: CacheTarget): Promise<string[]> {
  const local = await s.deps.repo(t.local).tags();
  let remote: string[] = [];
  try {
    const res = await upstreamRequest(t, 'GET', 'tags/list');
    if (res.statusCode === 200) {
      const doc = await readJson<{ tags?: string[] | null }>(res, `${t.image}: tags`, 'tags');
      remote = (doc.tags ?? []).filter(
        (tag) => typeof tag === 'string' && isTag(tag) && decideFlow(s.flows, { repository: t.image, tag }).allowed,
      );
    } else await res.body.dump();
  } catch (e) {
    s.deps.log.warn(
      { upstream: t.upstream.name, image: t.image, err: (e as Error).message },
      'cache: upstream tag list failed; listing cached tags',
    );
  }
  return [...new Set([...local.filter((tag) => !tag.startsWith('sha256-')), ...remote])].sort();
}
