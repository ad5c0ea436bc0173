import { z } from 'zod';
import { compilePatterns, type Pattern } from './patterns.js';
import { ANONYMOUS } from './types.js';

/** Where images move, each a place a trust requirement may apply. */
export const TRUST_POINTS = ['pull', 'cache', 'mirror', 'passthrough', 'copy'] as const;
/** One of the places a trust requirement applies. */
export type TrustPoint = (typeof TRUST_POINTS)[number];

const identity = z.union([
  z.enum(['matchExact', 'matchRepoDigestOrExact', 'matchRepository']),
  z.object({ type: z.literal('exactReference'), dockerReference: z.string() }).strict(),
  z.object({ type: z.literal('exactRepository'), dockerRepository: z.string() }).strict(),
  z.object({ type: z.literal('remapIdentity'), prefix: z.string(), signedPrefix: z.string() }).strict(),
]);

/** The name of the sigstore public-good trusted root, shipped with Sluice; `trust.roots` adds others. */
export const PUBLIC_GOOD_ROOT = 'public-good';

// A keyless identity as cosign's flags and the policy-controller's `keyless.identities` spell it.
const keylessIdentity = z
  .object({
    issuer: z.string().min(1).optional(),
    issuerRegExp: z.string().min(1).optional(),
    subject: z.string().min(1).optional(),
    subjectRegExp: z.string().min(1).optional(),
    github: z
      .object({
        repository: z.string().min(1).optional(),
        ref: z.string().min(1).optional(),
        trigger: z.string().min(1).optional(),
        sha: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((i) => i.issuer !== undefined || i.issuerRegExp !== undefined, {
    message: 'a keyless identity needs issuer or issuerRegExp',
  })
  .refine((i) => i.subject !== undefined || i.subjectRegExp !== undefined, {
    message: 'a keyless identity needs subject or subjectRegExp',
  });

/** The `trust:` section: named cosign public keys, sigstore roots, and which images need whose signature, where. */
export const trustSchema = z
  .object({
    keys: z.record(z.string(), z.string()).default({}).describe('name: path of a cosign public key (PEM)'),
    roots: z
      .record(z.string(), z.string())
      .default({})
      .describe(`name: path of a sigstore trusted_root.json (${PUBLIC_GOOD_ROOT} is built in)`),
    trustStores: z
      .record(
        z
          .string()
          .regex(
            /^(ca|signingAuthority):[A-Za-z0-9_.-]+$/,
            'a trust store is named <ca|signingAuthority>:<name>, as notation names them',
          ),
        z.string(),
      )
      .default({})
      .describe('notation trust stores: "ca:name": folder of X.509 certificates'),
    require: z
      .array(
        z
          .object({
            name: z.string().optional(),
            images: z.union([z.string(), z.array(z.string())]).transform((x) => (Array.isArray(x) ? x : [x])),
            keys: z.array(z.string()).default([]),
            identities: z.array(keylessIdentity).default([]),
            roots: z.array(z.string()).min(1).optional(),
            notation: z
              .object({
                trustStores: z.array(z.string()).min(1),
                identities: z.array(z.string().min(1)).min(1).default(['*']),
                // notation's verification levels and override, as trustpolicy.json spells them (docs/trust.md).
                level: z.enum(['strict', 'permissive', 'audit']).default('strict'),
                override: z
                  .object({
                    authenticity: z.enum(['enforce', 'log']).optional(),
                    authenticTimestamp: z.enum(['enforce', 'log']).optional(),
                    expiry: z.enum(['enforce', 'log']).optional(),
                    revocation: z.enum(['enforce', 'log', 'skip']).optional(),
                  })
                  .strict()
                  .optional(),
              })
              .strict()
              .optional(),
            identity: identity.default('matchRepoDigestOrExact'),
            on: z.array(z.enum(TRUST_POINTS)).default([...TRUST_POINTS]),
          })
          .strict()
          .refine((r) => r.keys.length > 0 || r.identities.length > 0 || r.notation !== undefined, {
            message: 'a trust rule needs keys, identities (keyless signers) or notation (trust stores)',
          }),
      )
      .default([]),
  })
  .strict();

/** The `trust:` section as configured. */
export type TrustConfig = z.infer<typeof trustSchema>;
/** One requirement rule as configured. */
export type TrustRuleSpec = TrustConfig['require'][number];

/** A compiled trust rule. */
export interface TrustRule {
  index: number;
  spec: TrustRuleSpec;
  images: Pattern[];
}

/** Compiles `trust.require`; a key name that `trust.keys` lacks is an error naming the rule. */
export function compileTrustRules(cfg: TrustConfig, sets: Record<string, string[]> = {}): TrustRule[] {
  return cfg.require.map((spec, i) => {
    const missing = spec.keys.filter((k) => !Object.hasOwn(cfg.keys, k));
    if (missing.length)
      throw new Error(
        `trust.require rule ${i + 1}: key ${missing.join(', ')} is not under trust.keys (keys: ${Object.keys(cfg.keys).join(', ') || 'none'})`,
      );
    const roots = spec.roots ?? [];
    const unknown = roots.filter((r) => r !== PUBLIC_GOOD_ROOT && !Object.hasOwn(cfg.roots, r));
    if (unknown.length)
      throw new Error(
        `trust.require rule ${i + 1}: root ${unknown.join(', ')} is not under trust.roots (roots: ${[PUBLIC_GOOD_ROOT, ...Object.keys(cfg.roots)].join(', ')})`,
      );
    const stores = (spec.notation?.trustStores ?? []).filter((n) => !Object.hasOwn(cfg.trustStores, n));
    if (stores.length)
      throw new Error(
        `trust.require rule ${i + 1}: trust store ${stores.join(', ')} is not under trust.trustStores (stores: ${Object.keys(cfg.trustStores).join(', ') || 'none'})`,
      );
    if (roots.length && spec.identities.length === 0)
      throw new Error(`trust.require rule ${i + 1}: roots without identities: say whose keyless signatures count`);
    return { index: i + 1, spec, images: compilePatterns(spec.images, sets) };
  });
}

/** The first trust rule that covers an image name at a place, or undefined when none requires anything. Pure. */
export function trustRuleFor(rules: TrustRule[], repository: string, where: TrustPoint): TrustRule | undefined {
  return rules.find((r) => r.spec.on.includes(where) && r.images.some((p) => p.matches({ repository }, ANONYMOUS)));
}

/** How a trust rule is named in messages. */
export function trustLabel(r: TrustRule): string {
  return r.spec.name ? `trust rule ${r.index} "${r.spec.name}"` : `trust rule ${r.index}`;
}

/** What a rule requires, in one phrase: its keys, then its keyless identities and roots. Pure. */
export function describeTrustRule(spec: TrustRuleSpec): string {
  const parts: string[] = [];
  if (spec.keys.length) parts.push(`a signature by key ${spec.keys.join(' or ')}`);
  for (const id of spec.identities) {
    const f: string[] = [];
    if (id.subject !== undefined) f.push(`subject ${id.subject}`);
    if (id.subjectRegExp !== undefined) f.push(`subject matching /${id.subjectRegExp}/`);
    if (id.issuer !== undefined) f.push(`issuer ${id.issuer}`);
    if (id.issuerRegExp !== undefined) f.push(`issuer matching /${id.issuerRegExp}/`);
    for (const [k, v] of Object.entries(id.github ?? {})) if (v !== undefined) f.push(`github ${k} ${v}`);
    parts.push(`a keyless signature by ${f.join(', ')} (root ${(spec.roots ?? [PUBLIC_GOOD_ROOT]).join(' or ')})`);
  }
  const identity = typeof spec.identity === 'string' ? spec.identity : spec.identity.type;
  const cosign = parts.length ? `${parts.join(', or ')} (${identity})` : '';
  const n = spec.notation;
  const override = n?.override ? ` ${JSON.stringify(n.override)}` : '';
  const level = n && (n.level !== 'strict' || n.override) ? ` at level ${n.level}${override}` : '';
  const by = n ? `${n.trustStores.join(' or ')} by ${n.identities.join(' | ')}${level}` : '';
  const notation = n ? `a notation signature from trust store ${by}` : '';
  return [cosign, notation].filter(Boolean).join(', and ');
}
