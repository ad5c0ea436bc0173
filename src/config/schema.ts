import { z } from 'zod';
import { isDuration } from './duration.js';
import { auditConfigSchema, authConfigSchema } from '../auth/config.js';
import { accessConfigSchema } from '../policy/config.js';

const duration = z.string().refine(isDuration, 'expected a duration such as 30s, 5m, 168h');

// Every object is strict so that unknown keys surface; load.ts turns those into warnings, not errors.
const platformEntry = z
  .object({ os: z.string().min(1), architecture: z.string().min(1), variant: z.string().min(1).optional() })
  .strict();

const logSchema = z
  .object({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    formatter: z.enum(['json', 'text', 'logstash']).optional(),
    fields: z.record(z.string(), z.unknown()).optional(),
    accesslog: z.object({ disabled: z.boolean().default(false) }).strict().optional(),
  })
  .strict();

const httpSchema = z
  .object({
    addr: z.string().default('127.0.0.1:5000'),
    prefix: z.string().optional(),
    host: z.string().optional(),
    secret: z.string().optional(),
    relativeurls: z.boolean().optional(),
    headers: z.record(z.string(), z.array(z.string())).optional(),
    draintimeout: duration.optional(),
  })
  .strict();

const storageSchema = z
  .object({
    filesystem: z
      .object({ rootdirectory: z.string().min(1).default('./data'), maxthreads: z.number().optional() })
      .strict()
      .optional(),
    delete: z.object({ enabled: z.boolean().default(false) }).strict().optional(),
    maintenance: z
      .object({
        readonly: z.object({ enabled: z.boolean().default(false) }).strict().optional(),
        // Distribution's keys and defaults: sessions older than `age` are deleted every `interval`.
        uploadpurging: z
          .object({ enabled: z.boolean().default(true), age: duration.default('168h'), interval: duration.default('24h'), dryrun: z.boolean().default(false) })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
    cache: z.record(z.string(), z.unknown()).optional(),
    redirect: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

const validationSchema = z
  .object({
    disabled: z.boolean().optional(),
    manifests: z
      .object({
        urls: z.record(z.string(), z.unknown()).optional(),
        indexes: z
          .object({
            platforms: z.enum(['all', 'none', 'list']).default('all'),
            platformlist: z.array(platformEntry).default([]),
          })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

const limitsSchema = z
  .object({
    manifestbytes: z.number().int().positive().default(4 * 1024 * 1024),
    blobbytes: z.number().int().positive().optional(),
  })
  .strict();

const healthSchema = z
  .object({ storagedriver: z.record(z.string(), z.unknown()).optional() })
  .strict();

/** The config file's schema: Distribution's keys where both have the feature, Sluice's own keys beside them. */
export const configSchema = z
  .object({
    version: z.union([z.string(), z.number()]).optional(),
    log: logSchema.default({}),
    http: httpSchema.default({}),
    storage: storageSchema.default({}),
    validation: validationSchema.default({}),
    limits: limitsSchema.default({}),
    health: healthSchema.optional(),
    // Access control: schemas live with the code that reads them (src/auth, src/policy).
    auth: authConfigSchema.optional(),
    access: accessConfigSchema.optional(),
    audit: auditConfigSchema.optional(),
  })
  .strict();

/** A loaded, validated configuration. */
export type Config = z.infer<typeof configSchema>;
