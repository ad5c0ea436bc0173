import { z } from 'zod';
import { isDuration } from '../config/duration.js';

/** `auth:` — Distribution's htpasswd and token keys as they are, plus Sluice's robots and token issuer. */
export const authConfigSchema = z
  .object({
    htpasswd: z
      .object({ realm: z.string().default('sluice'), path: z.string().min(1) })
      .strict()
      .optional(),
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
    robots: z
      .object({ path: z.string().min(1) })
      .strict()
      .optional(),
    // Failed logins allowed per client address and per user name in each window; more are answered 429.
    ratelimit: z
      .object({
        failures: z.number().int().positive().default(10),
        window: z.string().refine(isDuration, { message: 'a duration such as 1m or 30s' }).default('1m'),
      })
      .strict()
      .default({}),
    // Sluice as its own token service (on whenever users or robots exist).
    issuer: z
      .object({
        enabled: z.boolean().default(true),
        /** The token endpoint challenges name; by default this server's own `/token` at its listen address (or `http.host`). */
        realm: z.string().optional(),
        /**
         * Build the realm from the request's Host header. Off by default: Host is the client's to choose, and a
         * realm pointing elsewhere sends the next client's password there.
         */
        realmfromhost: z.boolean().default(false),
        /** The service name challenges carry, or several names this registry answers to (the first is used in challenges). */
        service: z.union([z.string().min(1), z.array(z.string().min(1)).nonempty()]).default('sluice'),
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
  .refine((a) => a.silly === undefined, {
    message: "Distribution's test-only scheme is not supported: use auth.htpasswd or auth.token",
    path: ['silly'],
  });

/** The parsed `auth:` section. */
export type AuthConfig = z.infer<typeof authConfigSchema>;

/** Whether anyone can log in to a registry with this `auth:` section (else, without rules, it is open). */
export function hasCredentials(auth: AuthConfig | Record<string, unknown> | undefined): boolean {
  const a = auth as Record<string, unknown> | undefined;
  return Boolean(a?.htpasswd || a?.robots || a?.token);
}

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
