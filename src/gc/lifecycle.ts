import type { Config } from '../config/schema.js';
import { compileEviction, type EvictionSpec } from '../policy/eviction.js';
import { compileRetention, type RetentionRule } from '../policy/retention.js';
import { jobName } from '../sync/job.js';
import { mirrorDestinations } from '../sync/destination.js';
import { localPrefix } from '../upstream/upstreams.js';

/** One upstream's cache under eviction: its local repositories start with `prefix/`. */
export interface EvictedCache {
  prefix: string;
  spec: EvictionSpec;
}

/** What the collector applies besides garbage: retention rules, cache eviction, and what mirror jobs own. */
export interface Lifecycle {
  rules: RetentionRule[];
  caches: EvictedCache[];
  /** The mirror job that writes a local repository, if one does: its selection and prune govern it, not these. */
  mirroredBy(repository: string): string | undefined;
}

/** What a lifecycle is built from. */
export type LifecycleConfig = Pick<Config, 'retention' | 'upstreams' | 'mirrors' | 'access'>;

/**
 * The lifecycle a config asks for, or undefined when it has no retention rules and no eviction. Throws a
 * PolicyError for a retention pattern that cannot be used. No I/O.
 */
export function lifecycleOf(config: LifecycleConfig): Lifecycle | undefined {
  const rules = compileRetention(config.retention ?? [], config.access?.sets ?? {});
  const caches: EvictedCache[] = [];
  for (const [host, u] of Object.entries(config.upstreams ?? {})) {
    if (!u.evict) continue;
    caches.push({ prefix: u.prefix ?? localPrefix(host), spec: compileEviction(`upstreams.${host}.evict`, u.evict) });
  }
  if (rules.length === 0 && caches.length === 0) return undefined;
  const naming = (host: string) => {
    const configured = Object.entries(config.upstreams ?? {}).find(([h]) => h.toLowerCase() === host.toLowerCase());
    return { name: host.toLowerCase(), prefix: configured?.[1].prefix ?? localPrefix(host) };
  };
  const jobs = (config.mirrors ?? []).map((m, i) => ({ name: jobName(m, i), writes: mirrorDestinations(m, naming) }));
  return { rules, caches, mirroredBy: (r) => jobs.find((j) => j.writes(r))?.name };
}
