export * from './types.js';
export { compilePolicy, decide, decideAll, ruleLabel, type Policy, type CompiledRule } from './evaluate.js';
export { checkPolicy, type Finding } from './check.js';
export { PolicyError, repositorySpellings, compilePatterns, type Pattern } from './patterns.js';
export { accessConfigSchema, policySpecFrom, DEFAULT_RULES, type AccessConfig } from './config.js';
