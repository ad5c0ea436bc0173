import { ruleLabel } from './evaluate.js';
import type { Decision, RuleSpec } from './types.js';

/** One access decision as `sluice policy explain` prints it: the verdict, the deciding rule, pattern, who, reason. */
export function decisionLines(d: Decision, rules: readonly RuleSpec[]): string[] {
  const lines = [`${d.action}: ${d.allowed ? 'ALLOWED' : 'DENIED'}`];
  const rule = d.rule !== undefined ? rules[d.rule - 1] : undefined;
  if (rule)
    lines.push(
      `  rule:    ${ruleLabel(d.rule!, rule)}: repos [${rule.repos.join(', ')}] who [${rule.who.join(', ')}]` +
        `${rule.allow.length ? ` allow [${rule.allow.join(', ')}]` : ''}` +
        `${rule.deny.length ? ` deny [${rule.deny.join(', ')}]` : ''}`,
    );
  if (d.pattern) lines.push(`  pattern: ${d.pattern}`);
  if (d.who) lines.push(`  who:     ${d.who}`);
  lines.push(`  reason:  ${d.reason}`);
  return lines;
}
