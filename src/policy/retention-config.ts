import { createRequire } from 'node:module';
import type validRangeOf from 'semver/ranges/valid.js';
import { z } from 'zod';
import { isDuration } from '../config/duration.js';

const require = createRequire(import.meta.url);

/**
 * semver's range check, required on first use: the schema is compiled by every command that reads a config,
 * and semver's range parser is 47 files that only a config with a `semver:` retention rule needs (issue 22).
 */
function validRange(range: string, options: { loose: boolean }): string | null {
  return (require('semver/ranges/valid.js') as typeof validRangeOf)(range, options);
}

const list = z.union([z.string().min(1), z.array(z.string().min(1))]).transform((x) => (Array.isArray(x) ? x : [x]));
const duration = z.string().refine(isDuration, 'expected a duration such as 12h, 30d, 2w');
const range = z
  .string()
  .refine((r) => validRange(r, { loose: true }) !== null, 'expected a semver range such as ">=1.0.0 <2"');

/**
 * One retention rule as written under `retention:`. Every keep criterion it names keeps a tag on its own; a rule
 * that names `tags` and no criterion keeps those tags always; one with neither speaks only about untagged manifests.
 */
export const retentionRuleSchema = z
  .object({
    name: z.string().min(1).optional(),
    images: list.describe("repository globs in the access rules' pattern language (team-a/**, docker.io/library/*)"),
    tags: list.optional().describe('tag globs this rule speaks about; alone, they are always kept'),
    latest: z.number().int().positive().optional().describe('keep the N most recently pushed of its tags'),
    pushedwithin: duration.optional().describe('keep its tags pushed within this long'),
    pulledwithin: duration.optional().describe('keep its tags pulled within this long'),
    semver: range.optional().describe('keep its tags whose version is in this range'),
    perminor: z.number().int().positive().optional().describe('with semver: only the highest N versions of each minor'),
    untagged: duration.optional().describe('delete untagged manifests this long after their push (or last pull)'),
  })
  .strict()
  .refine((r) => r.perminor === undefined || r.semver !== undefined, {
    message: 'perminor needs semver (a range; ">=0" for every version)',
    path: ['perminor'],
  });

/** The `retention:` section: rules per repository glob; a tag is kept when any rule keeps it. */
export const retentionSchema = z.array(retentionRuleSchema);

/** One retention rule as configured. */
export type RetentionRuleConfig = z.infer<typeof retentionRuleSchema>;

const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$/;
const SIZE_UNIT = {
  ...{ B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 },
  ...{ KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 },
} as const;

/** Bytes of a size written `500MB`, `20GiB` or a plain number; NaN when it is none. */
export function parseSize(text: string | number): number {
  if (typeof text === 'number') return text;
  const m = SIZE.exec(text.trim());
  return m ? Math.floor(Number(m[1]) * SIZE_UNIT[(m[2] ?? 'B') as keyof typeof SIZE_UNIT]) : NaN;
}

/** `upstreams.<host>.evict` (or a flow rule's): when cached images of the upstream leave the cache. */
export const evictSchema = z
  .object({
    unpulled: duration
      .optional()
      .describe('evict a cached tag nobody pulled for this long (never pulled: counted from when it was cached)'),
    maxsize: z
      .union([z.number().int().positive(), z.string()])
      .refine((s) => parseSize(s) > 0, 'expected a size such as 500MB, 20GiB or a number of bytes')
      .optional()
      .describe('above this many bytes, the least recently pulled images are evicted first'),
  })
  .strict();

/** An eviction block as configured. */
export type EvictConfig = z.infer<typeof evictSchema>;
