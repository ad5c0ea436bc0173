import { z } from 'zod';
import { ACTIONS, type Action, type PolicySpec, type RuleSpec } from './types.js';

const actionList = z
  .array(z.union([z.enum(ACTIONS), z.literal('*')]))
  .default([])
  .transform((xs): Action[] => (xs.includes('*') ? [...ACTIONS] : [...new Set(xs as Action[])]));

const stringList = z.union([z.string().min(1), z.array(z.string().min(1))]).transform((x) => (Array.isArray(x) ? x : [x]));

const ruleSchema = z
  .object({
    name: z.string().min(1).optional(),
    repos: stringList,
    who: stringList,
    allow: actionList,
    deny: actionList,
  })
  .strict();

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
export const DEFAULT_RULES: RuleSpec[] = [{ name: 'authenticated (default)', repos: ['**'], who: ['authenticated'], allow: [...ACTIONS], deny: [] }];

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
