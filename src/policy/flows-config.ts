import { z } from 'zod';
import { isDuration } from '../config/duration.js';
import { evictSchema } from './retention-config.js';

const list = z.union([z.string().min(1), z.array(z.string().min(1))]).transform((x) => (Array.isArray(x) ? x : [x]));

/** One flow rule as written under `flows:`. */
export const flowSchema = z
  .object({
    name: z.string().min(1).optional(),
    images: list,
    tags: z.object({ include: list.optional(), exclude: list.optional() }).strict().optional(),
    platforms: z
      .array(z.string().regex(/^[^/\s]+\/[^/\s]+(\/[^/\s]+)?$/, 'expected os/architecture[/variant]'))
      .optional(),
    deny: z.boolean().optional(),
    referrers: z.boolean().optional(),
    ttl: z.string().refine(isDuration, 'expected a duration such as 30s, 5m').optional(),
    keys: z.array(z.string().min(1)).optional(),
    // The size cap weighs a whole upstream's cache, so only the time is per rule.
    evict: evictSchema.pick({ unpulled: true }).strict().optional(),
  })
  .strict();

/** The `flows:` section: ordered rules, first match decides, nothing flows when none matches. */
export const flowsSchema = z.array(flowSchema);
