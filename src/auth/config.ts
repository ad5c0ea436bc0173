import { z } from 'zod';

/** `auth:` — Distribution's htpasswd and token keys as they are, plus Sluice's robots and token issuer. */
export const authConfigSchema = z
  .object({
    htpasswd: z.object({ realm: z.string().default('sluice'), path: z.string().min(1) }).strict().optional(),
    // Trust tokens from an external issuer, as Distribution's `auth.token` does.
    token: z
      .object({
        realm: z.string().min(1),
        service: z.string().min(1),
        issuer: z.string().min(1),
        rootcertbundle: z.string().min(1).optional(),
        jwks: z.string().min(1).optional(),
        autoredirect: z.boolean().optional(),
        signingalgorithms: z.array(z.string()).optional(),
      })
      .strict()
      .optional(),
    robots: z.object({ path: z.string().min(1) }).strict().optional(),
    // Sluice as its own token service (on whenever users or robots exist).
    issuer: z
      .object({
        enabled: z.boolean().default(true),
        realm: z.string().optional(),
        service: z.string().min(1).default('sluice'),
        issuer: z.string().min(1).default('sluice'),
        key: z.string().min(1).optional(),
        expiration: z.number().int().positive().default(300),
        refreshexpiration: z.number().int().positive().default(86400),
      })
      .strict()
      .default({}),
    // Distribution's test-only scheme: taking it and ignoring it would leave the registry open.
    silly: z.unknown().optional(),
  })
  .strict()
  .refine((a) => a.silly === undefined, { message: "Distribution's test-only scheme is not supported: use auth.htpasswd or auth.token", path: ['silly'] });

/** The parsed `auth:` section. */
export type AuthConfig = z.infer<typeof authConfigSchema>;

/** `audit:` — a JSON-lines record of every push, delete and denied request. */
export const auditConfigSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** A file to append to, or `-` / `stdout`. */
    path: z.string().min(1).default('-'),
  })
  .strict();

/** The parsed `audit:` section. */
export type AuditConfig = z.infer<typeof auditConfigSchema>;
