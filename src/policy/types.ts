/** The actions a policy decides. `overwrite` is re-pointing an existing tag; `list` is the catalog. */
export const ACTIONS = ['pull', 'push', 'delete', 'overwrite', 'list'] as const;

/** One of the actions a policy decides. */
export type Action = (typeof ACTIONS)[number];

/** True when the text names an action. */
export function isAction(text: string): text is Action {
  return (ACTIONS as readonly string[]).includes(text);
}

/** Who is asking, as the policy sees it (authentication happened before). */
export type Principal = { kind: 'anonymous' } | { kind: 'user'; name: string } | { kind: 'robot'; name: string };

/** The anonymous principal. */
export const ANONYMOUS: Principal = { kind: 'anonymous' };

/** How a principal is written in rules, explanations and the audit log: `alice`, `robot:builder`, `anonymous`. */
export function principalText(p: Principal): string {
  return p.kind === 'anonymous' ? 'anonymous' : p.kind === 'robot' ? `robot:${p.name}` : p.name;
}

/**
 * What a request concerns. `repository` is absent for registry-wide requests (the catalog).
 * Later filters (registry, platform, mode) are added here as optional fields.
 */
export interface Target {
  repository?: string;
  tag?: string;
  digest?: string;
}

/** One question to the policy. */
export interface DecisionInput {
  principal: Principal;
  action: Action;
  target: Target;
}

/** A rule as written in the config (after defaults). */
export interface RuleSpec {
  name?: string;
  repos: string[];
  who: string[];
  allow: Action[];
  deny: Action[];
}

/** The `access:` section as the policy reads it. */
export interface PolicySpec {
  groups: Record<string, string[]>;
  sets: Record<string, string[]>;
  /** Repository patterns where nothing may be written (push, delete, overwrite). */
  readonly: string[];
  /** The whole registry is read-only (`storage.maintenance.readonly.enabled`). */
  readonlyAll?: boolean;
  rules: RuleSpec[];
}

/** Why a decision was made: the rule (or read-only setting) and the pattern that matched. */
export interface Decision {
  allowed: boolean;
  action: Action;
  /** 1-based index of the deciding rule; absent when no rule applied or read-only decided. */
  rule?: number;
  ruleName?: string;
  /** The repository pattern that matched (as written, `@set` entries expanded and named). */
  pattern?: string;
  /** The `who` entry that matched the principal. */
  who?: string;
  /** `rule`, `readonly` or `default` (no rule applied). */
  by: 'rule' | 'readonly' | 'default';
  /** One line for error messages and `sluice policy explain`. */
  reason: string;
}

/** The username prefix that marks a robot account in Basic credentials: `robot$builder`. */
export const ROBOT_PREFIX = 'robot$';
