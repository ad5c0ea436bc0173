import picomatch from 'picomatch';
import { expandPatterns, PolicyError, repositorySpellings } from './patterns.js';
import { whoCovers } from './principals.js';
import { compilePolicy, ruleLabel } from './evaluate.js';
import type { Action, PolicySpec, RuleSpec } from './types.js';

/** One finding of `checkPolicy`. */
export interface Finding {
  level: 'error' | 'warning';
  rule?: number;
  message: string;
}

const GLOB = /[*?{}[\]!]/;

/** Whether pattern `a` matches everything pattern `b` matches (conservative: false when unsure). */
function patternCovers(a: string, b: string): boolean {
  if (a === b || a === '**') return true;
  if (a.includes('$user') || b.includes('$user')) return false;
  if (!GLOB.test(b)) return repositorySpellings(b).some((s) => picomatch(a)(s));
  if (a.endsWith('/**')) {
    const prefix = a.slice(0, -2);
    return b.startsWith(prefix) && !GLOB.test(prefix);
  }
  return false;
}

function reposCovered(earlier: RuleSpec, later: RuleSpec, sets: Record<string, string[]>): boolean {
  const a = expandPatterns(earlier.repos, sets).map((x) => x.source);
  const b = expandPatterns(later.repos, sets).map((x) => x.source);
  return b.every((pb) => a.some((pa) => patternCovers(pa, pb)));
}

/**
 * Validates a policy: unknown sets and groups are errors; rules that can never decide
 * anything (every action already decided by earlier rules for all they cover) are warnings.
 */
export function checkPolicy(spec: PolicySpec): Finding[] {
  const findings: Finding[] = [];
  try {
    compilePolicy(spec);
  } catch (e) {
    if (e instanceof PolicyError) return [{ level: 'error', message: e.message }];
    throw e;
  }
  spec.rules.forEach((rule, i) => {
    const label = ruleLabel(i + 1, rule);
    const both = rule.allow.filter((a) => rule.deny.includes(a));
    if (both.length) findings.push({ level: 'warning', rule: i + 1, message: `${label} both allows and denies ${both.join(', ')}; deny wins` });
    const actions: Action[] = [...new Set([...rule.allow, ...rule.deny])];
    if (actions.length === 0) {
      findings.push({ level: 'warning', rule: i + 1, message: `${label} has no allow or deny actions and never applies` });
      return;
    }
    const shadows = new Map<Action, number>();
    for (const a of actions) {
      for (let j = 0; j < i; j++) {
        const e = spec.rules[j]!;
        if ((e.allow.includes(a) || e.deny.includes(a)) && whoCovers(e.who, rule.who, spec.groups) && reposCovered(e, rule, spec.sets)) {
          shadows.set(a, j + 1);
          break;
        }
      }
    }
    if (shadows.size === actions.length) {
      const by = [...new Set(shadows.values())].map((n) => ruleLabel(n, spec.rules[n - 1]!)).join(', ');
      findings.push({ level: 'warning', rule: i + 1, message: `${label} is unreachable: ${by} already decide${shadows.size > 1 ? '' : 's'} everything it covers` });
    } else if (shadows.size > 0) {
      for (const [a, n] of shadows) findings.push({ level: 'warning', rule: i + 1, message: `${label}: "${a}" is never decided here; ${ruleLabel(n, spec.rules[n - 1]!)} decides it first` });
    }
  });
  const used = new Set<string>();
  const collect = (entries: string[]) => entries.filter((e) => e.startsWith('@')).forEach((e) => used.add(e.slice(1)));
  spec.rules.forEach((r) => collect(r.repos));
  collect(spec.readonly);
  Object.values(spec.sets).forEach(collect);
  for (const s of Object.keys(spec.sets)) if (!used.has(s)) findings.push({ level: 'warning', message: `set @${s} is defined but not used` });
  return findings;
}
