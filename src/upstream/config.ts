import { z } from 'zod';
import { isDuration } from '../config/duration.js';
import { evictSchema } from '../policy/retention-config.js';

const duration = z.string().refine(isDuration, 'expected a duration such as 30s, 5m, 168h');

/** One upstream registry, by the host its images are named with (`docker.io`, `ghcr.io`, `host:port`). */
export const upstreamSchema = z
  .object({
    url: z
      .string()
      .url()
      .optional()
      .describe('where it is reached; docker.io defaults to https://registry-1.docker.io, others to https://<host>'),
    username: z.string().optional(),
    password: z.string().optional(),
    passwordfile: z.string().optional().describe('a file holding the password (read at start)'),
    authfile: z
      .string()
      .optional()
      .describe('a Docker config.json whose auths entry for this host holds the credentials'),
    tlsverify: z.boolean().default(true),
    cafile: z.string().optional().describe('extra CA certificates (PEM) to trust'),
    timeout: duration
      .default('10s')
      .describe('connect and response-header timeout: past it, a cached tag is served stale'),
    minrate: z
      .number()
      .int()
      .nonnegative()
      .default(10240)
      .describe(
        'bytes per second a blob download must average over each ratewindow, or it is given up (its clients get an error, the partial blob is removed, the next pull starts afresh); 0: never',
      ),
    ratewindow: duration.default('30s').describe('the window minrate is averaged over'),
    concurrency: z.number().int().positive().default(8).describe('requests in flight to this upstream at once'),
    ttl: duration.default('5m').describe('a fetched tag is trusted this long, then checked with a HEAD'),
    negativettl: duration.default('30s').describe('an upstream "not found" is remembered this long'),
    prefix: z.string().optional().describe('local repository prefix; default the host (":" becomes "_")'),
    unprefixed: z
      .boolean()
      .optional()
      .describe(
        'names without a registry host (dockerd registry-mirrors) mean this upstream; default true for docker.io',
      ),
    evict: evictSchema.optional().describe('cached images nobody pulls leave the cache (applied by storage.gc)'),
  })
  .strict();

/** The `upstreams:` section. */
export const upstreamsSchema = z.record(z.string(), upstreamSchema);

/** Distribution's `proxy:` block: the whole registry is a cache of one upstream, everything allowed. */
export const proxySchema = z
  .object({
    remoteurl: z.string().url(),
    username: z.string().optional(),
    password: z.string().optional(),
    ttl: duration.optional(),
  })
  .strict();

/** One upstream as configured. */
export type UpstreamConfig = z.infer<typeof upstreamSchema>;
/** Distribution's proxy block as configured. */
export type ProxyConfig = z.infer<typeof proxySchema>;
