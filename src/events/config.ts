import { z } from 'zod';
import { isDuration } from '../config/duration.js';
import { EVENT_TYPES } from './types.js';

const duration = z.string().refine(isDuration, 'expected a duration such as 30s, 5m, 168h');

/**
 * One endpoint of `notifications.endpoints`: Distribution's keys as Distribution reads them, then Sluice's
 * (format, secret, filters, dead-lettering) beside them.
 */
const endpointSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected a name of letters, digits, ".", "_" or "-"'),
    disabled: z.boolean().default(false),
    url: z.string().url(),
    headers: z.record(z.string(), z.array(z.string())).default({}),
    timeout: duration.default('1s'),
    threshold: z.number().int().nonnegative().default(10),
    backoff: duration.default('1s'),
    ignoredmediatypes: z.array(z.string()).default([]),
    ignore: z
      .object({ mediatypes: z.array(z.string()).default([]), actions: z.array(z.string()).default([]) })
      .strict()
      .default({}),
    // Sluice's keys.
    format: z.enum(['distribution', 'cloudevents']).default('distribution'),
    /** A Standard Webhooks secret (`whsec_` and base64): each delivery is signed with it. */
    secret: z
      .string()
      .regex(/^whsec_[A-Za-z0-9+/]+=*$/, 'expected whsec_ followed by base64')
      .optional(),
    /** Repository globs (the access rules' pattern engine); events of other repositories are not sent. */
    repositories: z.array(z.string().min(1)).optional(),
    /** Event types to send; every type the format can carry when absent. */
    types: z.array(z.enum(EVENT_TYPES)).optional(),
    /** Media types to send (events without one pass); every type when absent. */
    mediatypes: z.array(z.string()).optional(),
    /** The longest wait between two tries of one event (the backoff doubles up to it). */
    maxbackoff: duration.default('5m'),
    /** Tries after which an event is set aside as a dead letter; 0 means no limit. */
    maxtries: z.number().int().nonnegative().default(0),
    /** Age after which an undelivered event is set aside as a dead letter. */
    maxage: duration.default('24h'),
  })
  .strict();

/** `notifications`: Distribution's block, plus the journal that makes its events durable. */
export const notificationsSchema = z
  .object({
    events: z
      .object({ includereferences: z.boolean().default(false) })
      .strict()
      .default({}),
    endpoints: z.array(endpointSchema).default([]),
    journal: z
      .object({
        /** This node's name in the journal; each node sharing a bucket must have its own. Defaults to the host name. */
        node: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected letters, digits, ".", "_" or "-"')
          .optional(),
        /** The most events kept; past it the oldest are dropped (counted and logged). */
        maxevents: z.number().int().positive().default(100_000),
        /** How long delivered events are kept for replay and `GET /api/v1/events`. */
        retention: duration.default('168h'),
        /**
         * `wanted`: a pull is journaled only when an endpoint's filters would send it; `all`: every pull, for
         * consumers that poll `GET /api/v1/events` or replay to an endpoint added later.
         */
        pulls: z.enum(['wanted', 'all']).default('wanted'),
      })
      .strict()
      .default({}),
  })
  .strict()
  .refine((n) => new Set(n.endpoints.map((e) => e.name)).size === n.endpoints.length, {
    message: 'endpoint names must be unique',
    path: ['endpoints'],
  });

/** The validated `notifications` block. */
export type NotificationsConfig = z.infer<typeof notificationsSchema>;
/** One validated endpoint. */
export type EndpointConfig = NotificationsConfig['endpoints'][number];
