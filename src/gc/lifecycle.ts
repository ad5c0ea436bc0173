import type { Config } from '../config/schema.js';
import { parseDuration } from '../config/duration.js';
import { lifecycleConfigured } from '../config/lifecycle-configured.js';
import { compileEviction, type EvictionSpec } from '../policy/eviction.js';
import { compileFlows, decideFlow, flowLabel } from '../policy/flows.js';
import { compileRetention, type RetentionRule } from '../policy/retention.js';
import { jobName } from '../sync/config.js';
import { mirrorDestinations } from '../sync/destination.js';
import { localPrefix } from '../upstream/upstreams.js';

/** One upstream's cache under eviction: its local repositories start with `prefix/`. */
export interface EvictedCache {
  /** The upstream's host: a local name `prefix/rest` is the upstream image `host/rest`, which flow rules judge. */
  host: string;
  prefix: string;
  spec: EvictionSpec;
}

/** A flow rule's own eviction time for one upstream image. */
export interface FlowEviction {
  ms: number;
  text: string;
  where: string;
}

/** What the collector applies besides garbage: retention rules, cache eviction, and what mirror jobs own. */
export interface Lifecycle {
  rules: RetentionRule[];
  caches: EvictedCache[];
  /** The mirror job that writes a local repository, if one does: its selection and prune govern it, not these. */
  mirroredBy(repository: string): string | undefined;
  /** The `evict.unpulled` of the flow rule that lets an upstream image in, when that rule sets one. */
  flowEviction(image: string, tag?: string): FlowEviction | undefined;
}

/** What a lifecycle is built from. */
export type LifecycleConfig = Pick<Config, 'retention' | 'upstreams' | 'mirrors' | 'access' | 'flows'>;

/**
 * The lifecycle a config asks for, or undefined when it has no retention rules and no eviction. Throws a
 * PolicyError for a retention pattern that cannot be used. No I/O.
 */
export function lifecycleOf(config: LifecycleConfig): Lifecycle | undefined {
  if (!lifecycleConfigured(config)) return undefined;
  const rules = compileRetention(config.retention ?? [], config.access?.sets ?? {});

  const sets = config.access?.sets ?? {};
  const flows = compileFlows(config.flows ?? [], sets);
  const perRule = flows.flows.some((f) => f.spec.evict?.unpulled !== undefined);
  const caches: EvictedCache[] = [];
  for (const [host, u] of Object.entries(config.upstreams ?? {})) {
    if (!u.evict && !perRule) continue;
    const spec = compileEviction(`upstreams.${host}.evict`, u.evict ?? {});
    caches.push({ host: host.toLowerCase(), prefix: u.prefix ?? localPrefix(host), spec });
  }
  if (rules.length === 0 && caches.length === 0) return undefined;
  const naming = (host: string) => {
    const configured = Object.entries(config.upstreams ?? {}).find(([h]) => h.toLowerCase() === host.toLowerCase());
    return { name: host.toLowerCase(), prefix: configured?.[1].prefix ?? localPrefix(host) };
  };
  const jobs = (config.mirrors ?? []).map((m, i) => ({ name: jobName(m, i), writes: mirrorDestinations(m, naming) }));
  const flowEviction = (image: string, tag?: string): FlowEviction | undefined => {
    const d = decideFlow(flows, { repository: image, ...(tag === undefined ? {} : { tag }) });
    const unpulled = d.allowed ? d.flow?.spec.evict?.unpulled : undefined;
    if (!unpulled || !d.flow) return undefined;
    return { ms: parseDuration(unpulled), text: unpulled, where: flowLabel(d.flow) };
  };
  return { rules, caches, mirroredBy: (r) => jobs.find((j) => j.writes(r))?.name, flowEviction };
}
