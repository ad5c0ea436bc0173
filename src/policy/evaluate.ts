import { compilePatterns, firstMatch, type Pattern } from './patterns.js';
import { compileWho, type WhoMatcher } from './principals.js';
import {
  principalText,
  type Action,
  type Decision,
  type DecisionInput,
  type PolicySpec,
  type RuleSpec,
  type Target,
} from './types.js';

const WRITES: ReadonlySet<Action> = new Set(['push', 'delete', 'overwrite']);

/** A rule ready to be evaluated. */
export interface CompiledRule {
  index: number;
  spec: RuleSpec;
  repos: Pattern[];
  who: WhoMatcher[];
  allow: ReadonlySet<Action>;
  deny: ReadonlySet<Action>;
}

/** A compiled policy: pure data, evaluated with `decide`. */
export interface Policy {
  spec: PolicySpec;
  rules: CompiledRule[];
  readonly: Pattern[];
}

/** Compiles a policy; throws PolicyError naming the rule for unknown sets or groups. */
export function compilePolicy(spec: PolicySpec): Policy {
  const rules = spec.rules.map((r, i) => {
    try {
      return {
        index: i + 1,
        spec: r,
        repos: compilePatterns(r.repos, spec.sets),
        who: compileWho(r.who, spec.groups),
        allow: new Set(r.allow),
        deny: new Set(r.deny),
      };
    } catch (e) {
      (e as Error).message = `${ruleLabel(i + 1, r)}: ${(e as Error).message}`;
      throw e;
    }
  });
  return { spec, rules, readonly: compilePatterns(spec.readonly, spec.sets) };
}

/** How a rule is named in messages: `rule 2` or `rule 2 "own-namespace"`. */
export function ruleLabel(index: number, spec: Pick<RuleSpec, 'name'>): string {
  return spec.name ? `rule ${index} "${spec.name}"` : `rule ${index}`;
}

function targetText(t: Target): string {
  if (t.repository === undefined) return 'the registry';
  return `${t.repository}${t.tag ? `:${t.tag}` : ''}${t.digest ? `@${t.digest}` : ''}`;
}

/** Whether a rule's repository condition holds; registry-wide requests (the catalog) ignore it. */
function repoMatch(rule: CompiledRule, input: DecisionInput): { ok: boolean; pattern?: string } {
  if (input.target.repository === undefined) return { ok: true };
  const p = firstMatch(rule.repos, input.target, input.principal);
  return p ? { ok: true, pattern: p.text } : { ok: false };
}

/**
 * Decides one request: read-only settings first for writes, then the first rule whose
 * repositories, principals and actions all apply; no applicable rule means denied.
 */
export function decide(policy: Policy, input: DecisionInput): Decision {
  const { action, principal, target } = input;
  const who = principalText(principal);
  const what = `${action} on ${targetText(target)} for ${who}`;
  if (WRITES.has(action)) {
    if (policy.spec.readonlyAll) {
      return {
        allowed: false,
        action,
        by: 'readonly',
        reason: `${what} denied: the registry is read-only (storage.maintenance.readonly.enabled)`,
      };
    }
    const ro = target.repository !== undefined ? firstMatch(policy.readonly, target, principal) : undefined;
    if (ro)
      return {
        allowed: false,
        action,
        by: 'readonly',
        pattern: ro.text,
        reason: `${what} denied: read-only pattern "${ro.text}" (access.readonly)`,
      };
  }
  for (const rule of policy.rules) {
    const denies = rule.deny.has(action);
    if (!denies && !rule.allow.has(action)) continue;
    const w = rule.who.find((m) => m.matches(principal));
    if (!w) continue;
    const r = repoMatch(rule, input);
    if (!r.ok) continue;
    const label = ruleLabel(rule.index, rule.spec);
    const via = r.pattern !== undefined ? ` (pattern "${r.pattern}", who "${w.text}")` : ` (who "${w.text}")`;
    const d: Decision = {
      allowed: !denies,
      action,
      by: 'rule',
      rule: rule.index,
      who: w.text,
      reason: `${what} ${denies ? 'denied' : 'allowed'} by ${label}${via}`,
    };
    if (rule.spec.name) d.ruleName = rule.spec.name;
    if (r.pattern !== undefined) d.pattern = r.pattern;
    return d;
  }
  return { allowed: false, action, by: 'default', reason: `${what} denied: no rule allows it` };
}

/** Every action in turn, for `explain` and the token service. */
export function decideAll(
  policy: Policy,
  principal: DecisionInput['principal'],
  target: Target,
  actions: readonly Action[],
): Decision[] {
  return actions.map((action) => decide(policy, { principal, action, target }));
}
