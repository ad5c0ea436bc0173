import picomatch from 'picomatch';
import { DOCKER_HUB, nameSpellings, parseReference } from '../oci/reference.js';
import type { Principal, Target } from './types.js';

/** Thrown for a pattern or set that cannot be used; the message names it. */
export class PolicyError extends Error {}

const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;

function looksLikeRegistry(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost';
}

/**
 * The spellings a repository name is matched in. A Docker Hub name (`docker.io/library/nginx`) gets its
 * usual spellings (`nginx`, `library/nginx`, full); a name on any other registry (`ghcr.io/konard/x`)
 * only its full one, because a short `konard/x` means Docker Hub's, and a pattern written for Docker Hub
 * must not approve an image of the same path elsewhere. A local name (`team-a/app`) is itself, and
 * `nginx` / `library/nginx` count as one another.
 */
export function repositorySpellings(repository: string): string[] {
  const parts = repository.split('/');
  if (parts.length > 1 && looksLikeRegistry(parts[0]!)) {
    try {
      const ref = parseReference(repository);
      if (ref.registry !== DOCKER_HUB) return [repository];
      const out = nameSpellings(ref);
      return out.includes(repository) ? out : [repository, ...out];
    } catch {
      return [repository];
    }
  }
  if (parts.length === 1) return [repository, `library/${repository}`];
  if (parts.length === 2 && parts[0] === 'library') return [parts[1]!, repository];
  return [repository];
}

/** A reference pattern taken apart: the repository-name glob and, when written, the tag or digest glob. */
export interface PatternParts {
  name: string;
  tag?: string;
  digest?: string;
}

/**
 * Splits a pattern into its name glob and its `:tag` or `@digest` glob, each matched on its own (so
 * `team-a/**:v*` keeps `**` crossing segments). The reference part starts at the first `@` after the
 * last `/`, else at the last `:` after the last `/`; a `host:port/` prefix is before a `/`, so it is
 * never taken for a tag.
 */
export function splitPattern(source: string): PatternParts {
  const slash = source.lastIndexOf('/');
  const at = source.indexOf('@', slash + 1);
  if (at >= 0) return { name: source.slice(0, at), digest: source.slice(at + 1) };
  const colon = source.lastIndexOf(':');
  if (colon > slash) return { name: source.slice(0, colon), tag: source.slice(colon + 1) };
  return { name: source };
}

/** A compiled reference pattern: use it for any rule kind whose subject is a Target. */
export interface Pattern {
  /** The pattern as the user wrote it (with `@set` origin when it came from a set). */
  text: string;
  /** True when the pattern matches the target, for this principal (`$user`). */
  matches(target: Target, principal: Principal): boolean;
}

type Glob = (s: string) => boolean;

const glob = (s: string): Glob => picomatch(s, { dot: false, nobrace: false, noext: true });

/** The globs of one pattern with `$user` (if any) already replaced. */
interface Globs {
  name: Glob;
  tag?: Glob;
  digest?: Glob;
}

function globsOf(parts: PatternParts, user?: string): Globs {
  const sub = (s: string) => (user === undefined ? s : s.split('$user').join(user));
  const g: Globs = { name: glob(sub(parts.name)) };
  if (parts.tag !== undefined) g.tag = glob(sub(parts.tag));
  if (parts.digest !== undefined) g.digest = glob(sub(parts.digest));
  return g;
}

function compileOne(source: string, label: string): Pattern {
  if (source.length === 0) throw new PolicyError('empty repository pattern');
  const parts = splitPattern(source);
  if (!parts.name)
    throw new PolicyError(`pattern "${source}" names no repository (write **:${parts.tag ?? ''} for every repository)`);
  if (parts.tag === '') throw new PolicyError(`pattern "${source}" has an empty tag after ":"`);
  if (parts.digest === '') throw new PolicyError(`pattern "${source}" has an empty digest after "@"`);
  const usesUser = source.includes('$user');
  const fixed = usesUser ? undefined : globsOf(parts);
  const perUser = new Map<string, Globs>();
  return {
    text: label,
    matches(target, principal) {
      if (target.repository === undefined) return false;
      let g = fixed;
      if (!g) {
        // Only a name that is a valid path component may stand in for $user, so it can carry no glob syntax.
        if (principal.kind !== 'user' || !COMPONENT.test(principal.name)) return false;
        g = perUser.get(principal.name);
        if (!g) {
          g = globsOf(parts, principal.name);
          perUser.set(principal.name, g);
        }
      }
      // A tag (or digest) pattern speaks only about requests that name a tag (or digest).
      if (g.tag && (target.tag === undefined || !g.tag(target.tag))) return false;
      if (g.digest && (target.digest === undefined || !g.digest(target.digest))) return false;
      // `team-a/**` also matches `team-a` itself (picomatch's globstar matches zero segments), so
      // `team-a/**:v*` covers `team-a:v1` as it covers `team-a/x/app:v1`.
      return repositorySpellings(target.repository).some((n) => g.name(n));
    },
  };
}

/** Expands `@set` entries (sets may name other sets) into the patterns they stand for, with labels. */
export function expandPatterns(
  entries: string[],
  sets: Record<string, string[]>,
  seen: string[] = [],
): { source: string; label: string }[] {
  const out: { source: string; label: string }[] = [];
  for (const e of entries) {
    if (e.startsWith('@')) {
      const name = e.slice(1);
      const members = Object.hasOwn(sets, name) ? sets[name] : undefined;
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

/**
 * Compiles pattern entries (globs and `@set` names) into matchers. The one pattern engine for every
 * rule kind: access rules, read-only patterns and flow rules all match a Target with it.
 */
export function compilePatterns(entries: string[], sets: Record<string, string[]>): Pattern[] {
  return expandPatterns(entries, sets).map((x) => compileOne(x.source, x.label));
}

/** The first pattern that matches a target, or undefined. */
export function firstMatch(patterns: Pattern[], target: Target, principal: Principal): Pattern | undefined {
  return patterns.find((p) => p.matches(target, principal));
}
