import { PolicyError } from './patterns.js';
import type { Principal } from './types.js';

/** A compiled `who` entry. */
export interface WhoMatcher {
  text: string;
  matches(p: Principal): boolean;
}

/** Normalizes a member or `who` name: a bare name is a user (`alice` → `user:alice`). */
export function canonicalWho(entry: string): string {
  if (entry === '*' || entry === 'anonymous' || entry === 'authenticated') return entry;
  if (/^(user|robot|group):/.test(entry)) return entry;
  return `user:${entry}`;
}

function principalKey(p: Principal): string | undefined {
  return p.kind === 'anonymous' ? undefined : `${p.kind}:${p.name}`;
}

/** Compiles a rule's `who` list against the config's groups. */
export function compileWho(entries: string[], groups: Record<string, string[]>): WhoMatcher[] {
  return entries.map((raw) => {
    const e = canonicalWho(raw);
    if (e === '*') return { text: raw, matches: () => true };
    if (e === 'anonymous') return { text: raw, matches: (p) => p.kind === 'anonymous' };
    if (e === 'authenticated') return { text: raw, matches: (p) => p.kind !== 'anonymous' };
    const [kind, name] = [e.slice(0, e.indexOf(':')), e.slice(e.indexOf(':') + 1)];
    if (!name) throw new PolicyError(`"${raw}" names nobody`);
    if (kind === 'group') {
      const members = Object.hasOwn(groups, name) ? groups[name] : undefined;
      if (!members) throw new PolicyError(`group ${name} is not defined under access.groups`);
      const keys = new Set(members.map(canonicalWho));
      return { text: raw, matches: (p) => keys.has(principalKey(p) ?? '') };
    }
    if (name === '*') return { text: raw, matches: (p) => p.kind === kind };
    return { text: raw, matches: (p) => principalKey(p) === `${kind}:${name}` };
  });
}

/** Whether `who` entry list `a` covers every principal entry list `b` covers (conservative). */
export function whoCovers(a: string[], b: string[], groups: Record<string, string[]> = {}): boolean {
  const ca = new Set(a.map(canonicalWho));
  // A group in `a` covers its members by name.
  for (const e of [...ca]) {
    const g = e.startsWith('group:') ? e.slice(6) : undefined;
    if (g !== undefined && Object.hasOwn(groups, g)) for (const m of groups[g]!) ca.add(canonicalWho(m));
  }
  if (ca.has('*')) return true;
  return b.every((raw) => {
    const e = canonicalWho(raw);
    if (ca.has(e)) return true;
    if (e === '*' || e === 'anonymous') return false;
    if (ca.has('authenticated')) return true;
    if (e.startsWith('user:') && ca.has('user:*')) return true;
    if (e.startsWith('robot:') && ca.has('robot:*')) return true;
    return false;
  });
}
