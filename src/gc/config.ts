import { z } from 'zod';
import { isDuration } from '../config/duration.js';
import { pullsSchema } from './pulls-config.js';

const duration = z.string().refine(isDuration, 'expected a duration such as 30s, 5m, 168h');
const CLOCK = /^([01]\d|2[0-3]):[0-5]\d$/;

/** `storage.gc`: online garbage collection inside `sluice serve`. */
export const gcSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** Time between passes; a candidate is deleted by the first pass after its grace. */
    interval: duration.default('1h'),
    /** How long a digest stays unused and untouched before it is deleted; longer than any push takes. */
    grace: duration.default('24h'),
    /** Passes start only inside this daily UTC window (`01:00-05:00`; may wrap past midnight). */
    window: z
      .string()
      .refine(
        (w) => w.split('-').length === 2 && w.split('-').every((p) => CLOCK.test(p)),
        'expected a UTC window such as 01:00-05:00',
      )
      .optional(),
    deleteuntagged: z.boolean().default(false),
    dryrun: z.boolean().default(false),
    /** Which node collects on a shared bucket: auto takes a lease where the storage has conditional writes. */
    collector: z.union([z.literal('auto'), z.boolean()]).default('auto'),
    /** Pull times per tag and manifest (`gc/pulls.ts`), recorded whether or not this node collects. */
    pulls: pullsSchema.optional(),
  })
  .strict();

/** The validated `storage.gc` block. */
export type GcConfig = z.infer<typeof gcSchema>;

/** True when `at` lies inside a daily UTC window `HH:MM-HH:MM` (which may wrap past midnight), or there is none. */
export function inWindow(window: string | undefined, at: Date): boolean {
  if (!window) return true;
  const [from, to] = window.split('-').map((p) => Number(p.slice(0, 2)) * 60 + Number(p.slice(3, 5))) as [
    number,
    number,
  ];
  const m = at.getUTCHours() * 60 + at.getUTCMinutes();
  return from <= to ? m >= from && m < to : m >= from || m < to;
}
