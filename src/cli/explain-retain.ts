import type { Config } from '../config/schema.js';
import type { RepositoryName } from '../oci/name.js';
import type { Target } from '../policy/types.js';

/** The `retain` answer of `sluice policy explain`: which tags retention and eviction keep, by which rule. */
export interface RetainExplanation {
  action: 'retain';
  repository: string;
  tag?: string;
  digest?: string;
  kept: boolean;
  reason: string;
}

/**
 * Judges one tag (or every tag) of a repository as the collector's next pass would, from the storage the config
 * names: push times, pull times, the rules. Reads storage; deletes nothing.
 */
export async function explainRetain(config: Config, target: Target): Promise<RetainExplanation[]> {
  if (target.digest) throw new Error('--action retain judges tags: give IMAGE or IMAGE:TAG');
  const repository = target.repository as RepositoryName;
  const { lifecycleOf } = await import('../gc/lifecycle.js');
  const lifecycle = lifecycleOf(config);
  const tag = target.tag;
  const untouched = (reason: string): RetainExplanation[] => {
    return [{ action: 'retain', repository, ...(tag ? { tag } : {}), kept: true, reason }];
  };
  if (!lifecycle) return untouched('kept: the config has no retention rules and no cache eviction');
  const { driverFor } = await import('../storage/driver-for.js');
  const { markStorage } = await import('../gc/mark.js');
  const { judgeLifecycle } = await import('../gc/retention.js');
  const driver = driverFor(config);
  try {
    // A size cap weighs the whole cache of the upstream; anything else needs this repository alone.
    const capped = lifecycle.caches.some((c) => repository.startsWith(`${c.prefix}/`) && c.spec.maxBytes !== undefined);
    const facts = await markStorage(driver, new Map(), capped ? {} : { only: repository });
    const deleteUntagged = config.storage.gc?.deleteuntagged ?? false;
    const judged = await judgeLifecycle(driver, facts, lifecycle, { now: Date.now(), deleteUntagged });
    const asked = (t: string | undefined): t is string => t !== undefined && (!tag || t === tag);
    const mine = judged.verdicts.filter((v) => v.repository === repository && asked(v.tag));
    if (mine.length === 0) {
      const tags = facts.repositories.find((r) => r.name === repository)?.tags;
      if (tag && !tags?.has(tag)) throw new Error(`${repository} has no tag ${tag}`);
      const artifact = tag ? ' (or the tag is an artifact tag, which follows its subject)' : '';
      return untouched(`kept: no retention rule matches this repository and it is not an evicting cache${artifact}`);
    }
    return mine.map((v) => ({
      action: 'retain' as const,
      repository,
      tag: v.tag!,
      digest: v.digest,
      kept: v.kept,
      reason: v.reason,
    }));
  } finally {
    (driver as { destroy?: () => void }).destroy?.();
  }
}

/** One line per tag: `team-a/app:v1: kept by rule 2 (latest 5)`. */
export function printRetain(es: RetainExplanation[]): string {
  return es.map((e) => `${e.repository}${e.tag ? `:${e.tag}` : ''}: ${e.reason}\n`).join('');
}
