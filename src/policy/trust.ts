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

/** The `trust:` section: named cosign public keys and which images need whose signature, where. */
export const trustSchema = z
  .object({
    keys: z.record(z.string(), z.string()).default({}).describe('name: path of a cosign public key (PEM)'),
    require: z
      .array(
        z
          .object({
            name: z.string().optional(),
            images: z.union([z.string(), z.array(z.string())]).transform((x) => (Array.isArray(x) ? x : [x])),
            keys: z.array(z.string()).min(1),
            identity: identity.default('matchRepoDigestOrExact'),
            on: z.array(z.enum(TRUST_POINTS)).default([...TRUST_POINTS]),
          })
          .strict(),
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
    if (missing.length) throw new Error(`trust.require rule ${i + 1}: key ${missing.join(', ')} is not under trust.keys (keys: ${Object.keys(cfg.keys).join(', ') || 'none'})`);
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
