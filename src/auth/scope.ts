import { isRepositoryName } from '../oci/name.js';

/** One entry of a token's `access` claim, as the Docker token spec writes it. */
export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

/**
 * Parses `scope` values (`repository:team-a/app:pull,push`, `registry:catalog:*`); a value may
 * hold several space-separated scopes. Names that are not valid repository names are dropped.
 */
export function parseScopes(values: string[]): AccessEntry[] {
  const out: AccessEntry[] = [];
  for (const v of values.flatMap((x) => x.split(' ')).filter(Boolean)) {
    const first = v.indexOf(':');
    const last = v.lastIndexOf(':');
    if (first < 0 || last === first) continue;
    const type = v.slice(0, first).replace(/\(.*\)$/, '');
    const name = v.slice(first + 1, last);
    const actions = v
      .slice(last + 1)
      .split(',')
      .filter(Boolean);
    if (type === 'repository' && !isRepositoryName(name)) continue;
    if (type === 'registry' && name !== 'catalog') continue;
    if (type !== 'repository' && type !== 'registry') continue;
    out.push({ type, name, actions });
  }
  return out;
}

/** Formats a scope for a challenge: `repository:NAME:pull,push`. */
export function formatScope(e: AccessEntry): string {
  return `${e.type}:${e.name}:${e.actions.join(',')}`;
}

/** The token actions a registry action needs (`overwrite` comes with push; `list` is the catalog's `*`). */
export function scopeActionFor(action: string): string {
  if (action === 'overwrite') return 'push';
  if (action === 'list') return '*';
  return action;
}

/** Quotes a challenge parameter value. */
function q(v: string): string {
  return `"${v.replace(/["\\]/g, '')}"`;
}

/** A `WWW-Authenticate: Bearer …` challenge. */
export function bearerChallenge(realm: string, service: string, scopes: AccessEntry[], error?: string): string {
  let s = `Bearer realm=${q(realm)},service=${q(service)}`;
  if (scopes.length) s += `,scope=${q(scopes.map(formatScope).join(' '))}`;
  if (error) s += `,error=${q(error)}`;
  return s;
}

/** A `WWW-Authenticate: Basic …` challenge. */
export function basicChallenge(realm: string): string {
  return `Basic realm=${q(realm)}`;
}
