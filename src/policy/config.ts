import { z } from 'zod';
import { ACTIONS, isAction, type Action, type PolicySpec, type RuleSpec } from './types.js';

/** How an unknown action is reported, with the values that would do. */
export function unknownActionMessage(value: unknown): string {
  return `unknown action ${typeof value === 'string' ? `'${value}'` : JSON.stringify(value)} (valid: ${ACTIONS.join(', ')}; * for all)`;
}

const actionName = z.custom<Action | '*'>(
  (v) => typeof v === 'string' && (v === '*' || isAction(v)),
  (v) => ({ message: unknownActionMessage(v) }),
);

// One action may be written without a list (`allow: pull`), as `repos` and `who` may.
const actionList = z
  .preprocess((x) => (typeof x === 'string' ? [x] : x), z.array(actionName))
  .default([])
  .transform((xs): Action[] => (xs.includes('*') ? [...ACTIONS] : [...new Set(xs as Action[])]));

const stringList = z
  .union([z.string().min(1), z.array(z.string().min(1))])
  .transform((x) => (Array.isArray(x) ? x : [x]));

/** The keys a rule may have, for messages. */
export const RULE_KEYS = ['name', 'repos', 'who', 'allow', 'deny'] as const;

const ruleSchema = z
  .object({
    name: z.string().min(1).optional(),
    repos: stringList,
    who: stringList,
    allow: actionList,
    deny: actionList,
  })
  .strict();

/** The keys the `access:` section may have, for messages. */
export const ACCESS_KEYS = ['groups', 'sets', 'readonly', 'rules'] as const;

/** The `access:` config section: groups, named reference sets, read-only patterns and ordered rules. */
export const accessConfigSchema = z
  .object({
    groups: z.record(z.string(), z.array(z.string().min(1))).default({}),
    sets: z.record(z.string(), z.array(z.string().min(1))).default({}),
    readonly: z.array(z.string().min(1)).default([]),
    rules: z.array(ruleSchema).optional(),
  })
  .strict();

/** The parsed `access:` section. */
export type AccessConfig = z.infer<typeof accessConfigSchema>;

/** When users exist but no rules are written: Distribution's behaviour, every authenticated caller may do everything. */
export const DEFAULT_RULES: RuleSpec[] = [
  { name: 'authenticated (default)', repos: ['**'], who: ['authenticated'], allow: [...ACTIONS], deny: [] },
];

/** The rule a registry runs with when nobody can log in and no rules are written: an open registry, as Distribution without auth. */
export const OPEN_RULES: RuleSpec[] = [{ ...DEFAULT_RULES[0]!, name: 'everyone (no auth configured)', who: ['*'] }];

/** The policy a config describes. */
export function policySpecFrom(access: AccessConfig | undefined, readonlyAll = false): PolicySpec {
  return {
    groups: access?.groups ?? {},
    sets: access?.sets ?? {},
    readonly: access?.readonly ?? [],
    readonlyAll,
    rules: access?.rules ?? DEFAULT_RULES,
  };
}

/**
 * The policy a registry actually enforces: the config's, except that with no rules and no way to log
 * in (no htpasswd, robots or token issuer) everyone may do everything. The server and `sluice policy`
 * both take it from here, so an explanation is always the server's answer.
 */
export function enforcedPolicySpec(
  access: AccessConfig | undefined,
  opts: { hasCredentials: boolean; readonlyAll?: boolean },
): PolicySpec {
  const spec = policySpecFrom(access, opts.readonlyAll ?? false);
  if (!access?.rules && !opts.hasCredentials) spec.rules = OPEN_RULES;
  return spec;
}
