import type { NotationAction, NotationEnforcement, NotationStore } from './notation.js';
import type { NotationRequirement, TrustRequirement } from './types.js';

// notation's trustpolicy.json (version 1.0), read as notation writes it. Pure: trust stores are resolved by the caller.

/** One trust policy of the file. */
export interface NotationPolicyEntry {
  name: string;
  /** `*`, or `registry/repository` names (no wildcards, as notation has it). */
  registryScopes: string[];
  level: 'strict' | 'permissive' | 'audit' | 'skip';
  /** The level's actions with the policy's `override` applied (absent for skip). */
  enforcement?: NotationEnforcement;
  /** `<type>:<name>`: `ca:acme`, `signingAuthority:acme`. */
  trustStores: string[];
  trustedIdentities: string[];
}

/** The trust policy specification's table: what each level does with each check (integrity is always enforced). */
export const NOTATION_LEVELS: Record<'strict' | 'permissive' | 'audit', NotationEnforcement> = {
  strict: { authenticity: 'enforce', authenticTimestamp: 'enforce', expiry: 'enforce', revocation: 'enforce' },
  permissive: { authenticity: 'enforce', authenticTimestamp: 'log', expiry: 'log', revocation: 'log' },
  audit: { authenticity: 'log', authenticTimestamp: 'log', expiry: 'log', revocation: 'log' },
};

// The keys `override` may set and the actions each allows, as the specification lists them (integrity: none).
const OVERRIDABLE: Record<keyof NotationEnforcement, NotationAction[]> = {
  authenticity: ['enforce', 'log'],
  authenticTimestamp: ['enforce', 'log'],
  expiry: ['enforce', 'log'],
  revocation: ['enforce', 'log', 'skip'],
};

/** Thrown for a trustpolicy.json that notation itself would refuse (or Sluice cannot apply). */
export class NotationPolicyError extends Error {
  override name = 'NotationPolicyError';
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string' && x !== '');

/** Parses trustpolicy.json strictly (unknown fields are errors); store names are checked, not read. */
export function parseNotationPolicy(text: string, file = 'trustpolicy.json'): NotationPolicyEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new NotationPolicyError(`${file}: not JSON (${(e as Error).message})`);
  }
  if (!isObject(doc) || doc.version !== '1.0' || !Array.isArray(doc.trustPolicies)) {
    throw new NotationPolicyError(`${file}: needs "version": "1.0" and a "trustPolicies" list`);
  }
  const seen = new Set<string>();
  const out = doc.trustPolicies.map((p, i): NotationPolicyEntry => {
    const where = `${file} trustPolicies[${i}]`;
    if (!isObject(p)) throw new NotationPolicyError(`${where} is not an object`);
    for (const k of Object.keys(p)) {
      if (!['name', 'registryScopes', 'signatureVerification', 'trustStores', 'trustedIdentities'].includes(k))
        throw new NotationPolicyError(`${where}: unknown field "${k}"`);
    }
    if (typeof p.name !== 'string' || !p.name || seen.has(p.name))
      throw new NotationPolicyError(`${where}: needs a unique name`);
    seen.add(p.name);
    if (!strings(p.registryScopes) || p.registryScopes.length === 0)
      throw new NotationPolicyError(`${where} (${p.name}): registryScopes must be a non-empty list`);
    if (p.registryScopes.includes('*') && p.registryScopes.length > 1)
      throw new NotationPolicyError(`${where} (${p.name}): "*" must be the only registry scope`);
    const sv = p.signatureVerification;
    const level = isObject(sv) ? sv.level : undefined;
    if (level !== 'strict' && level !== 'permissive' && level !== 'audit' && level !== 'skip') {
      throw new NotationPolicyError(
        `${where} (${p.name}): signatureVerification.level must be strict, permissive, audit or skip`,
      );
    }
    const override = isObject(sv) ? sv.override : undefined;
    const skipped = level === 'skip' && override === undefined;
    const enforcement = skipped ? undefined : withOverride(level, override, `${where} (${p.name})`);
    const trustStores = p.trustStores ?? [];
    const trustedIdentities = p.trustedIdentities ?? [];
    if (!strings(trustStores) || !strings(trustedIdentities))
      throw new NotationPolicyError(`${where} (${p.name}): trustStores and trustedIdentities must be lists of strings`);
    if (level !== 'skip' && (trustStores.length === 0 || trustedIdentities.length === 0)) {
      throw new NotationPolicyError(`${where} (${p.name}): a ${level} policy needs trustStores and trustedIdentities`);
    }
    for (const s of trustStores)
      if (!/^(ca|signingAuthority|tsa):[A-Za-z0-9_.-]+$/.test(s))
        throw new NotationPolicyError(
          `${where} (${p.name}): trust store "${s}" is not <ca|signingAuthority|tsa>:<name>`,
        );
    const entry: NotationPolicyEntry = {
      name: p.name,
      registryScopes: p.registryScopes,
      level,
      trustStores,
      trustedIdentities,
    };
    if (enforcement) entry.enforcement = enforcement;
    return entry;
  });
  if (out.filter((p) => p.registryScopes.includes('*')).length > 1)
    throw new NotationPolicyError(`${file}: only one policy may have the "*" scope`);
  return out;
}

// A level's actions with `override` applied; the specification allows no override of skip or of integrity.
function withOverride(level: NotationPolicyEntry['level'], override: unknown, where: string): NotationEnforcement {
  if (level === 'skip') throw new NotationPolicyError(`${where}: the skip level cannot be overridden`);
  const out = { ...NOTATION_LEVELS[level] };
  if (override === undefined) return out;
  if (!isObject(override)) throw new NotationPolicyError(`${where}: signatureVerification.override must be an object`);
  for (const [k, v] of Object.entries(override)) {
    const fail = (why: string) => new NotationPolicyError(`${where}: ${why}`);
    if (k === 'integrity') throw fail('integrity cannot be overridden (it is always enforced)');
    const allowed = OVERRIDABLE[k as keyof NotationEnforcement] as NotationAction[] | undefined;
    if (!allowed) throw fail(`override key "${k}" is not one of ${Object.keys(OVERRIDABLE).join(', ')}`);
    if (!allowed.includes(v as NotationAction))
      throw fail(`override ${k} must be ${allowed.join(' or ')}, not ${JSON.stringify(v)}`);
    out[k as keyof NotationEnforcement] = v as NotationAction;
  }
  return out;
}

/** Says what a level enforces and what it only logs, for messages: `audit (logs authenticity, expiry, ...)`. */
export function describeEnforcement(e: NotationEnforcement): string {
  const by = (a: NotationAction) => (Object.keys(e) as (keyof NotationEnforcement)[]).filter((k) => e[k] === a);
  const parts = [`logs ${by('log').join(', ') || 'nothing'}`];
  if (by('skip').length) parts.push(`skips ${by('skip').join(', ')}`);
  return parts.join(', ');
}

/** The policy for an image `registry/repository`: the one naming it exactly, else the `*` one, else none. */
export function notationPolicyFor(policies: NotationPolicyEntry[], name: string): NotationPolicyEntry | undefined {
  return policies.find((p) => p.registryScopes.includes(name)) ?? policies.find((p) => p.registryScopes.includes('*'));
}

/**
 * The requirement a policy gives: `skip` needs nothing; strict, permissive and audit need a signature whose
 * integrity holds, with the other checks enforced or logged as the level (and its override) says. As in notation,
 * an image with no signature at all fails at every level but skip.
 */
export function notationRequirement(
  p: NotationPolicyEntry | undefined,
  store: (name: string) => NotationStore,
  name: string,
): TrustRequirement {
  if (!p) return { type: 'reject' };
  if (p.level === 'skip' || !p.enforcement) return { type: 'insecureAcceptAnything' };
  const req: NotationRequirement = {
    type: 'notationSigned',
    stores: p.trustStores.map(store),
    identities: p.trustedIdentities,
    name: `trust policy ${p.name} for ${name}`,
  };
  if (p.level !== 'strict' || JSON.stringify(p.enforcement) !== JSON.stringify(NOTATION_LEVELS.strict)) {
    req.enforcement = p.enforcement;
    req.level = p.level;
  }
  return req;
}
