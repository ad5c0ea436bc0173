import { ANONYMOUS } from '../policy/types.js';
import { compilePatterns, type Pattern } from '../policy/patterns.js';
import type { EndpointConfig } from './config.js';
import type { RegistryEvent } from './types.js';

/** Decides which events an endpoint receives. */
export type EventFilter = (e: RegistryEvent) => boolean;

/**
 * The endpoint's filter: Distribution's `ignoredmediatypes` and `ignore` as Distribution applies them, then
 * Sluice's `types`, `mediatypes` and `repositories` (globs in the access rules' pattern engine). An endpoint
 * in Distribution's format only receives what Distribution would send: events that have an `action`.
 */
export function endpointFilter(endpoint: EndpointConfig): EventFilter {
  const ignoredTypes = new Set([...endpoint.ignoredmediatypes, ...endpoint.ignore.mediatypes]);
  const ignoredActions = new Set(endpoint.ignore.actions);
  const types = endpoint.types ? new Set<string>(endpoint.types) : undefined;
  const mediaTypes = endpoint.mediatypes ? new Set(endpoint.mediatypes) : undefined;
  const repos: Pattern[] | undefined = endpoint.repositories ? compilePatterns(endpoint.repositories, {}) : undefined;
  return (e) => {
    if (endpoint.format === 'distribution' && !e.action) return false;
    if (e.action && ignoredActions.has(e.action)) return false;
    const mt = e.target.mediaType;
    if (mt !== undefined && ignoredTypes.has(mt)) return false;
    if (types && !types.has(e.type)) return false;
    if (mediaTypes && mt !== undefined && !mediaTypes.has(mt)) return false;
    if (repos) {
      const repository = e.target.repository;
      if (!repository) return false;
      const target = { repository, tag: e.target.tag, digest: e.target.digest };
      if (!repos.some((p) => p.matches(target, ANONYMOUS))) return false;
    }
    return true;
  };
}

/** Whether any pull could pass the endpoint's filters (repositories and media types aside). */
export function mayAdmitPulls(endpoint: EndpointConfig): boolean {
  return !endpoint.ignore.actions.includes('pull') && (!endpoint.types || endpoint.types.includes('pull'));
}
