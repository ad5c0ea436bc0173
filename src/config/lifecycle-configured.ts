import type { Config } from './schema.js';

/**
 * Whether a config asks for a lifecycle at all (retention rules, or eviction of a cache's images), read from
 * the config alone: the web UI asks on every page load, and the collector's modules need not load for that.
 */
export function lifecycleConfigured(config: Pick<Config, 'retention' | 'upstreams' | 'flows'>): boolean {
  if ((config.retention?.length ?? 0) > 0) return true;
  const upstreams = Object.values(config.upstreams ?? {});
  if (upstreams.length === 0) return false;
  return upstreams.some((u) => u.evict) || (config.flows ?? []).some((f) => f.evict?.unpulled !== undefined);
}
