import picomatch from 'picomatch';
import { nameSpellings, parseReference } from '../oci/reference.js';
import type { Principal, Target } from './types.js';

/** Thrown for a pattern or set that cannot be used; the message names it. */
export class PolicyError extends Error {}

const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;

function looksLikeRegistry(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost';
}

/**
 * The spellings a repository name is matched in. A name whose first segment is a registry host
 * (`docker.io/library/nginx`) gets its usual spellings (`nginx`, `library/nginx`, full); a local
 * name (`team-a/app`) is itself, and `nginx` / `library/nginx` count as one another.
 */
export function repositorySpellings(repository: string): string[] {
  const parts = repository.split('/');
  if (parts.length > 1 && looksLikeRegistry(parts[0]!)) {
    try {
      const out = nameSpellings(parseReference(repository));
      return out.includes(repository) ? out : [repository, ...out];
    } catch {
      return [repository];
    }
  }
  if (parts.length === 1) return [repository, `library/${repository}`];
  if (parts.length === 2 && parts[0] === 'library') return [parts[1]!, repository];
  return [repository];
}

/** Which part of a reference a pattern speaks about. */
type PatternKind = 'name' | 'tag' | 'digest';

function kindOf(pattern: string): PatternKind {
  const last = pattern.slice(pattern.lastIndexOf('/') + 1);
  if (last.includes('@')) return 'digest';
  if (last.includes(':')) return 'tag';
  return 'name';
}

/** A compiled reference pattern. */
export interface Pattern {
  /** The pattern as the user wrote it (with `@set` origin when it came from a set). */
  text: string;
  /** True when the pattern matches the target, for this principal (`$user`). */
  matches(target: Target, principal: Principal): boolean;
}

function compileOne(source: string, label: string): Pattern {
  if (source.length === 0) throw new PolicyError('empty repository pattern');
  const kind = kindOf(source);
  const literal = (s: string) => picomatch(s, { dot: false, nobrace: false, noext: true });
  const usesUser = source.includes('$user');
  const fixed = usesUser ? undefined : literal(source);
  const perUser = new Map<string, picomatch.Matcher>();
  return {
    text: label,
    matches(target, principal) {
      if (target.repository === undefined) return false;
      let m = fixed;
      if (usesUser) {
        // Only a name that is a valid path component may stand in for $user, so it can carry no glob syntax.
        if (principal.kind !== 'user' || !COMPONENT.test(principal.name)) return false;
        m = perUser.get(principal.name);
        if (!m) {
          m = literal(source.split('$user').join(principal.name));
          perUser.set(principal.name, m);
        }
      }
      const names = repositorySpellings(target.repository);
      if (kind === 'name') return names.some((n) => m!(n));
      if (kind === 'tag') return target.tag !== undefined && names.some((n) => m!(`${n}:${target.tag}`));
      return target.digest !== undefined && names.some((n) => m!(`${n}@${target.digest}`));
    },
  };
}

/** Expands `@set` entries (sets may name other sets) into the patterns they stand for, with labels. */
export function expandPatterns(entries: string[], sets: Record<string, string[]>, seen: string[] = []): { source: string; label: string }[] {
  const out: { source: string; label: string }[] = [];
  for (const e of entries) {
    if (e.startsWith('@')) {
      const name = e.slice(1);
      const members = sets[name];
      if (!members) throw new PolicyError(`set @${name} is not defined under access.sets`);
      if (seen.includes(name)) throw new PolicyError(`set @${name} includes itself`);
      for (const x of expandPatterns(members, sets, [...seen, name])) {
        out.push({ source: x.source, label: x.label.startsWith('@') ? x.label : `@${name}: ${x.label}` });
      }
    } else {
      out.push({ source: e, label: e });
    }
  }
  return out;
}

/** Compiles pattern entries (globs and `@set` names) into matchers. */
export function compilePatterns(entries: string[], sets: Record<string, string[]>): Pattern[] {
  return expandPatterns(entries, sets).map((x) => compileOne(x.source, x.label));
}

/** The first pattern that matches a target, or undefined. */
export function firstMatch(patterns: Pattern[], target: Target, principal: Principal): Pattern | undefined {
  return patterns.find((p) => p.matches(target, principal));
}
