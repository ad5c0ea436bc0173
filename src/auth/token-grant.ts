// What a token we issue may carry: the requested scopes, cut down to what the policy allows the principal.
import { ACTIONS, isAction, type Action, type Principal } from '../policy/types.js';
import type { AccessGate } from './gate.js';
import type { AccessEntry } from './scope.js';

/** The access a token should carry for requested scopes: only what the policy allows. */
export function grantScopes(gate: AccessGate, principal: Principal, requested: AccessEntry[]): AccessEntry[] {
  const out: AccessEntry[] = [];
  for (const r of requested) {
    if (r.type === 'registry') {
      if (gate.decide(principal, 'list', {}).allowed) out.push({ type: 'registry', name: r.name, actions: ['*'] });
      continue;
    }
    const wanted = new Set<Action>();
    for (const a of r.actions) {
      if (a === '*') for (const x of ['pull', 'push', 'delete'] as Action[]) wanted.add(x);
      else if (isAction(a) && a !== 'list') wanted.add(a);
    }
    if (wanted.has('push')) wanted.add('overwrite');
    // A name a mirror client uses (`library/nginx`) may be served from a cache repository: the token
    // carries what the policy allows on either; each request is still decided on the repository it reaches.
    const names = [r.name, ...(gate.nameAliases?.(r.name) ?? [])];
    const ok = ACTIONS.filter(
      (a) => wanted.has(a) && names.some((n) => gate.decide(principal, a, { repository: n }).allowed),
    );
    const existing = out.find((e) => e.type === 'repository' && e.name === r.name);
    if (existing) existing.actions = [...new Set([...existing.actions, ...ok])];
    else if (ok.length) out.push({ type: 'repository', name: r.name, actions: ok });
  }
  return out;
}
