import picomatch from 'picomatch';
import { closest } from '../config/suggest.js';
import { compilePatterns, expandPatterns, PolicyError, repositorySpellings, splitPattern } from './patterns.js';
import { canonicalWho, compileWho, whoCovers } from './principals.js';
import { ruleLabel } from './evaluate.js';
import type { Action, PolicySpec, RuleSpec } from './types.js';

/** One finding of `checkPolicy`. */
export interface Finding {
  level: 'error' | 'warning';
  /** 1-based number of the rule it is about; absent for sets, groups and read-only patterns. */
  rule?: number;
  message: string;
}

/** Accounts that can log in, as a check sees them: where they come from and whether a name is there. */
export interface Roster {
  /** Where the names come from, for messages (a file path). */
  from: string;
  has(name: string): boolean;
  /** Every name, when known: used to suggest the one a misspelt name meant. */
  names?: readonly string[];
}

/**
 * The users and robots that exist. A roster left out means that kind of account is not configured
 * (no one of that kind can log in); leaving the whole object out skips the check.
 */
export interface KnownPrincipals {
  users?: Roster;
  robots?: Roster;
}

const GLOB = /[*?{}[\]!]/;

/** Whether name glob `a` matches every name glob `b` matches (conservative: false when unsure). */
function nameCovers(a: string, b: string): boolean {
  if (a === b || a === '**') return true;
  if (a.includes('$user') || b.includes('$user')) return false;
  if (!GLOB.test(b)) return repositorySpellings(b).some((s) => picomatch(a)(s));
  if (a.endsWith('/**')) {
    const prefix = a.slice(0, -2);
    return b.startsWith(prefix) && !GLOB.test(prefix);
  }
  return false;
}

/** Whether tag (or digest) glob `a` matches every value glob `b` matches (conservative). */
function valueCovers(a: string, b: string): boolean {
  if (a === b || a === '*' || a === '**') return true;
  return !GLOB.test(b) && picomatch(a)(b);
}

/** Whether pattern `a` matches everything pattern `b` matches, name and tag or digest each (conservative). */
function patternCovers(a: string, b: string): boolean {
  const pa = splitPattern(a);
  const pb = splitPattern(b);
  if (!nameCovers(pa.name, pb.name)) return false;
  if (pa.tag !== undefined) return pb.tag !== undefined && valueCovers(pa.tag, pb.tag);
  if (pa.digest !== undefined) return pb.digest !== undefined && valueCovers(pa.digest, pb.digest);
  return true;
}

function reposCovered(earlier: RuleSpec, later: RuleSpec, sets: Record<string, string[]>): boolean {
  const a = expandPatterns(earlier.repos, sets).map((x) => x.source);
  const b = expandPatterns(later.repos, sets).map((x) => x.source);
  return b.every((pb) => a.some((pa) => patternCovers(pa, pb)));
}

/** The message of a PolicyError thrown by `fn`, or undefined; other errors propagate. */
function problem(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (e instanceof PolicyError) return e.message;
    throw e;
  }
}

/** Every pattern, set reference and `who` entry that cannot be used, each its own finding. */
function errorsOf(spec: PolicySpec): Finding[] {
  const out: Finding[] = [];
  // A bad pattern inside a set is reported once, for the set, not again for every rule that names it.
  const entryProblem = (entry: string) =>
    problem(() => (entry.startsWith('@') ? expandPatterns([entry], spec.sets) : compilePatterns([entry], {})));
  for (const [name, members] of Object.entries(spec.sets)) {
    for (const m of members) {
      const p = entryProblem(m);
      if (p) out.push({ level: 'error', message: `set @${name}: ${p}` });
    }
  }
  for (const entry of spec.readonly) {
    const p = entryProblem(entry);
    if (p) out.push({ level: 'error', message: `access.readonly: ${p}` });
  }
  spec.rules.forEach((rule, i) => {
    const label = ruleLabel(i + 1, rule);
    for (const entry of rule.repos) {
      const p = entryProblem(entry);
      if (p) out.push({ level: 'error', rule: i + 1, message: `${label}: ${p}` });
    }
    for (const entry of rule.who) {
      const p = problem(() => compileWho([entry], spec.groups));
      if (p) out.push({ level: 'error', rule: i + 1, message: `${label}: ${p}` });
    }
  });
  return out;
}

/** Rules that never decide anything, rules that allow and deny the same action, and sets nobody uses. */
function warningsOf(spec: PolicySpec): Finding[] {
  const findings: Finding[] = [];
  spec.rules.forEach((rule, i) => {
    const label = ruleLabel(i + 1, rule);
    const both = rule.allow.filter((a) => rule.deny.includes(a));
    if (both.length)
      findings.push({
        level: 'warning',
        rule: i + 1,
        message: `${label} both allows and denies ${both.join(', ')}; deny wins`,
      });
    const actions: Action[] = [...new Set([...rule.allow, ...rule.deny])];
    if (actions.length === 0) {
      findings.push({
        level: 'warning',
        rule: i + 1,
        message: `${label} has no allow or deny actions and never applies`,
      });
      return;
    }
    const shadows = new Map<Action, number>();
    for (const a of actions) {
      for (let j = 0; j < i; j++) {
        const e = spec.rules[j]!;
        if (
          (e.allow.includes(a) || e.deny.includes(a)) &&
          whoCovers(e.who, rule.who, spec.groups) &&
          reposCovered(e, rule, spec.sets)
        ) {
          shadows.set(a, j + 1);
          break;
        }
      }
    }
    if (shadows.size === actions.length) {
      const by = [...new Set(shadows.values())].map((n) => ruleLabel(n, spec.rules[n - 1]!)).join(', ');
      findings.push({
        level: 'warning',
        rule: i + 1,
        message: `${label} is unreachable: ${by} already decide${shadows.size > 1 ? '' : 's'} everything it covers`,
      });
    } else if (shadows.size > 0) {
      for (const [a, n] of shadows)
        findings.push({
          level: 'warning',
          rule: i + 1,
          message: `${label}: "${a}" is never decided here; ${ruleLabel(n, spec.rules[n - 1]!)} decides it first`,
        });
    }
  });
  const used = new Set<string>();
  const collect = (entries: string[]): void => {
    for (const e of entries) if (e.startsWith('@')) used.add(e.slice(1));
  };
  for (const r of spec.rules) collect(r.repos);
  collect(spec.readonly);
  Object.values(spec.sets).forEach(collect);
  for (const s of Object.keys(spec.sets))
    if (!used.has(s)) findings.push({ level: 'warning', message: `set @${s} is defined but not used` });
  return findings;
}

/** Why a `user:`/`robot:` name can never be the caller, or undefined when it can. */
function absence(entry: string, known: KnownPrincipals): string | undefined {
  const e = canonicalWho(entry);
  const kind = e.startsWith('user:') ? 'user' : e.startsWith('robot:') ? 'robot' : undefined;
  if (!kind) return undefined;
  const name = e.slice(kind.length + 1);
  if (!name || name === '*') return undefined;
  const roster = kind === 'user' ? known.users : known.robots;
  if (!roster)
    return `${kind} ${name} can never log in: no ${kind === 'user' ? 'auth.htpasswd' : 'auth.robots'} file is configured`;
  if (roster.has(name)) return undefined;
  const near = roster.names ? closest(name, roster.names) : undefined;
  return `${kind} ${name} is not in ${roster.from}${near ? ` (did you mean ${near}?)` : ''}`;
}

/**
 * Users and robots named in `who` lists and group members that do not exist. Warnings, not errors:
 * accounts are files the registry re-reads while it runs, so a rule may be written before its user.
 */
function principalWarnings(spec: PolicySpec, known: KnownPrincipals): Finding[] {
  const out: Finding[] = [];
  for (const [group, members] of Object.entries(spec.groups)) {
    for (const m of members) {
      if (canonicalWho(m).startsWith('group:')) {
        out.push({
          level: 'warning',
          message: `group ${group}: member ${m} is a group, and groups do not nest; it matches nobody`,
        });
        continue;
      }
      const why = absence(m, known);
      if (why) out.push({ level: 'warning', message: `group ${group}: ${why}` });
    }
  }
  spec.rules.forEach((rule, i) => {
    for (const entry of rule.who) {
      const why = absence(entry, known);
      if (why) out.push({ level: 'warning', rule: i + 1, message: `${ruleLabel(i + 1, rule)}: ${why}` });
    }
  });
  return out;
}

/** Findings in rule order (by 1-based rule number), those about no rule after them; otherwise as found. */
export function byRule(findings: Finding[]): Finding[] {
  return findings
    .map((f, i) => ({ f, i }))
    .sort((x, y) => (x.f.rule ?? Infinity) - (y.f.rule ?? Infinity) || x.i - y.i)
    .map((x) => x.f);
}

/**
 * Validates a policy and reports every problem at once: unknown sets and groups and unusable patterns
 * are errors; rules that can never decide anything (every action already decided by earlier rules for
 * all they cover) are warnings, looked for only when there are no errors (and `reachability` is not
 * false); with `known`, users and robots that do not exist are warnings too.
 */
export function checkPolicy(
  spec: PolicySpec,
  known?: KnownPrincipals,
  opts: { reachability?: boolean } = {},
): Finding[] {
  const errors = errorsOf(spec);
  const reach = errors.length === 0 && opts.reachability !== false;
  return byRule([...errors, ...(reach ? warningsOf(spec) : []), ...(known ? principalWarnings(spec, known) : [])]);
}
