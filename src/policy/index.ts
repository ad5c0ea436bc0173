export * from './types.js';
export { compilePolicy, decide, decideAll, ruleLabel, type Policy, type CompiledRule } from './evaluate.js';
export { checkPolicy, type Finding, type KnownPrincipals, type Roster } from './check.js';
export { checkAccessConfig, type AccessCheck } from './validate.js';
export {
  PolicyError,
  repositorySpellings,
  compilePatterns,
  splitPattern,
  type Pattern,
  type PatternParts,
} from './patterns.js';
export { accessConfigSchema, policySpecFrom, enforcedPolicySpec, DEFAULT_RULES, type AccessConfig } from './config.js';
