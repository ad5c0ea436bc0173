import type { ZodIssue } from 'zod';
import { closest } from '../config/suggest.js';
import { byRule, checkPolicy, type Finding, type KnownPrincipals } from './check.js';
import { ACCESS_KEYS, accessConfigSchema, enforcedPolicySpec, RULE_KEYS } from './config.js';
import { ACTIONS, isAction, type Action, type PolicySpec, type RuleSpec } from './types.js';

/** What `checkAccessConfig` found, and the policy the section describes when it is valid. */
export interface AccessCheck {
  findings: Finding[];
  /** The enforced policy; absent when the section does not parse. */
  spec?: PolicySpec;
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

function unknownKeys(where: string, keys: string[], valid: readonly string[]): string[] {
  return keys.map((k) => {
    const near = closest(k, valid);
    return `${where}: unknown key '${k}' (valid: ${valid.join(', ')}${near ? `; did you mean ${near}?` : ''})`;
  });
}

function lower(text: string): string {
  return /^[A-Z][a-z]/.test(text) ? text[0]!.toLowerCase() + text.slice(1) : text;
}

/** One line per problem, rules named by their 1-based number as everywhere else in `sluice policy`. */
function describe(issue: ZodIssue, raw: unknown): { rule?: number; messages: string[] } {
  const [top, index, field, ...rest] = issue.path;
  if (top === 'rules' && typeof index === 'number') {
    const rule = index + 1;
    const where = `rule ${rule}`;
    const written = isRecord(raw) && Array.isArray(raw.rules) && isRecord(raw.rules[index]) ? raw.rules[index] : {};
    if (field === undefined) {
      if (issue.code === 'unrecognized_keys') return { rule, messages: unknownKeys(where, issue.keys, RULE_KEYS) };
      return { rule, messages: [`${where}: expected a mapping with repos, who and allow or deny`] };
    }
    if ((field === 'allow' || field === 'deny') && rest.length === 1 && issue.code === 'custom')
      return { rule, messages: [`${where}: ${issue.message}`] };
    if (typeof field === 'string' && rest.length === 0 && written[field] === undefined)
      return { rule, messages: [`${where}: ${String(field)} is required`] };
    if (field === 'repos' || field === 'who')
      return {
        rule,
        messages: [
          `${where}: ${field} must be a non-empty ${field === 'repos' ? 'pattern' : 'name'} or a list of them`,
        ],
      };
    return { rule, messages: [`${where}: ${[field, ...rest].join('.')}: ${lower(issue.message)}`] };
  }
  if (issue.path.length === 0 && issue.code === 'unrecognized_keys')
    return { messages: unknownKeys('access', issue.keys, ACCESS_KEYS) };
  if (issue.path.length === 0) return { messages: [`access: ${lower(issue.message)}`] };
  return { messages: [`access.${issue.path.join('.')}: ${lower(issue.message)}`] };
}

const strings = (x: unknown): string[] =>
  typeof x === 'string'
    ? [x]
    : Array.isArray(x)
      ? x.filter((s): s is string => typeof s === 'string' && s.length > 0)
      : [];

function actions(x: unknown): Action[] {
  const xs = strings(x);
  return xs.includes('*') ? [...ACTIONS] : [...new Set(xs.filter(isAction))];
}

function stringRecord(x: unknown): Record<string, string[]> {
  if (!isRecord(x)) return {};
  return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, strings(v)]));
}

/** What can be read of a section that does not parse, so its sets, groups and names are still checked. */
function lenientSpec(raw: unknown): PolicySpec {
  const obj = isRecord(raw) ? raw : {};
  const rules: RuleSpec[] = (Array.isArray(obj.rules) ? obj.rules : []).map((r: unknown) => {
    const o = isRecord(r) ? r : {};
    const rule: RuleSpec = {
      repos: strings(o.repos),
      who: strings(o.who),
      allow: actions(o.allow),
      deny: actions(o.deny),
    };
    if (typeof o.name === 'string' && o.name) rule.name = o.name;
    return rule;
  });
  return { groups: stringRecord(obj.groups), sets: stringRecord(obj.sets), readonly: strings(obj.readonly), rules };
}

/**
 * Checks a raw `access:` section (as written in the config file) and reports every problem at once:
 * what the schema refuses, named by 1-based rule number with the values that would do, then what
 * `checkPolicy` finds in the rest. Reachability is judged only once the section parses.
 */
export function checkAccessConfig(
  raw: unknown,
  opts: { known?: KnownPrincipals; hasCredentials: boolean },
): AccessCheck {
  const parsed = accessConfigSchema.safeParse(raw ?? {});
  if (parsed.success) {
    const spec = enforcedPolicySpec(parsed.data, { hasCredentials: opts.hasCredentials });
    return { spec, findings: checkPolicy(spec, opts.known) };
  }
  const schema: Finding[] = [];
  for (const issue of parsed.error.issues) {
    const d = describe(issue, raw);
    for (const message of d.messages)
      if (!schema.some((f) => f.message === message))
        schema.push({ level: 'error', ...(d.rule ? { rule: d.rule } : {}), message });
  }
  const rest = checkPolicy(lenientSpec(raw), opts.known, { reachability: false });
  return { findings: byRule([...schema, ...rest]) };
}
