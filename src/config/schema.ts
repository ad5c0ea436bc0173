import { z } from 'zod';
import { isDuration } from './duration.js';
import { auditConfigSchema, authConfigSchema } from '../auth/config.js';
import { accessConfigSchema } from '../policy/config.js';
import { flowsSchema } from '../policy/flows-config.js';
import { mirrorsSchema } from '../sync/config.js';
import { uiConfigSchema } from '../ui/config.js';
import { trustSchema } from '../policy/trust.js';
import { proxySchema, upstreamsSchema } from '../upstream/config.js';
import { gcSchema } from '../gc/config.js';
import { notificationsSchema } from '../events/config.js';
import { retentionSchema } from '../policy/retention-config.js';

const duration = z.string().refine(isDuration, 'expected a duration such as 30s, 5m, 168h');

// Every object is strict so that unknown keys surface: load.ts turns each into an error with a suggestion.
// Only keys whose meaning Sluice carries out are here; a Distribution key that is accepted although
// nothing reads it says in a comment why its meaning already holds.
const platformEntry = z
  .object({ os: z.string().min(1), architecture: z.string().min(1), variant: z.string().min(1).optional() })
  .strict();

const logSchema = z
  .object({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    // Sluice writes JSON lines (pino); Distribution's text and logstash formats are not implemented.
    formatter: z
      .enum(['json'], { errorMap: () => ({ message: 'Sluice writes JSON lines only: use json or leave it out' }) })
      .optional(),
    fields: z.record(z.string(), z.unknown()).optional(),
    accesslog: z
      .object({ disabled: z.boolean().default(false) })
      .strict()
      .optional(),
  })
  .strict();

const pathText = z.string().min(1);

// Distribution's http.tls; files are read when the server is built (src/config/tls.ts).
const tlsSchema = z
  .object({
    certificate: pathText,
    key: pathText,
    // CA files for client certificates: when given, every client must present one they signed.
    clientcas: z.array(pathText).min(1).optional(),
    minimumtls: z
      .enum(['tls1.2', 'tls1.3'], {
        errorMap: () => ({ message: 'expected tls1.2 or tls1.3 (older versions are not offered)' }),
      })
      .optional(),
  })
  .strict();

const httpSchema = z
  .object({
    addr: z.string().default('127.0.0.1:5000'),
    // Sluice only sends relative URLs (Location headers), so the external host is never needed, and
    // relativeurls: true is always the case (every client resolves a relative Location).
    host: z.string().optional(),
    relativeurls: z.boolean().optional(),
    // Distribution signs upload state with it; Sluice keeps upload state in storage, so there is nothing to sign.
    secret: z.string().optional(),
    headers: z.record(z.string(), z.array(z.string())).optional(),
    draintimeout: duration.optional(),
    tls: tlsSchema.optional(),
  })
  .strict();

const storageSchema = z
  .object({
    filesystem: z
      // maxthreads bounds Go threads in Distribution; Node's file I/O has its own pool, so it has no meaning here.
      .object({
        rootdirectory: z.string().min(1).default('./data'),
        maxthreads: z.number().int().positive().optional(),
      })
      .strict()
      .optional(),
    // Distribution's s3-aws keys; credentials may also come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    s3: z
      .object({
        accesskey: z.string().optional(),
        secretkey: z.string().optional(),
        region: z.string().min(1),
        regionendpoint: z.string().optional(),
        bucket: z.string().min(1),
        rootdirectory: z.string().optional(),
        forcepathstyle: z.boolean().optional(),
        secure: z.boolean().optional(),
        chunksize: z
          .number()
          .int()
          .min(5 << 20)
          .optional(),
        storageclass: z.string().optional(),
        encrypt: z.boolean().optional(),
        // The SDK always signs with SigV4; v2 signatures are gone from S3, so only true is meaningful.
        v4auth: z.literal(true, { errorMap: () => ({ message: 'only v4auth: true is supported' }) }).optional(),
        immutabletags: z
          .enum(['strict', 'besteffort'])
          .optional()
          .describe(
            'strict (default): a writing node whose access rules deny overwrite does not start on a server that ignores conditional writes (If-None-Match), where two nodes could both create one immutable tag; besteffort: start anyway, accepting that race (docs/s3.md)',
          ),
      })
      .strict()
      .optional(),
    delete: z
      .object({ enabled: z.boolean().default(false) })
      .strict()
      .optional(),
    gc: gcSchema.optional(),
    // Distribution's key. Distribution redirects by default when its driver can; Sluice only when asked
    // (disable: false), since clients must then reach the bucket's endpoint themselves. S3 only.
    redirect: z.object({ disable: z.boolean() }).strict().optional(),
    automount: z
      .union([z.literal('auto'), z.boolean()])
      .optional()
      .describe(
        'POST ?mount=<digest> without from= links a blob stored in any repository. auto (default): only when no access control is configured, since it would let anyone who knows a digest take a blob from a repository they cannot pull; true: always; false: never (such a request opens an ordinary upload)',
      ),
    maintenance: z
      .object({
        readonly: z
          .object({ enabled: z.boolean().default(false) })
          .strict()
          .optional(),
        // Distribution's keys and defaults: sessions older than `age` are deleted every `interval`.
        uploadpurging: z
          .object({
            enabled: z.boolean().default(true),
            age: duration.default('168h'),
            interval: duration.default('24h'),
            dryrun: z.boolean().default(false),
          })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
    // Debian's config.yml names the in-memory descriptor cache; Sluice reads descriptors from storage, which
    // behaves the same. A redis cache is not implemented.
    cache: z
      .object({
        blobdescriptor: z
          .enum(['inmemory'], {
            errorMap: () => ({ message: 'only inmemory is supported (a redis cache is not implemented)' }),
          })
          .optional(),
        blobdescriptorsize: z.number().int().positive().optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((s) => !(s.filesystem && s.s3), { message: 'give exactly one of storage.filesystem and storage.s3' })
  .refine((s) => s.s3 || s.redirect?.disable !== false, {
    message:
      'redirects need storage.s3: the filesystem driver has no URL to redirect to (leave storage.redirect out, or set disable: true)',
    path: ['redirect', 'disable'],
  });

const validationSchema = z
  .object({
    // In Distribution these switch only the manifests.urls checks, which Sluice refuses as not implemented.
    enabled: z.boolean().optional(),
    disabled: z.boolean().optional(),
    manifests: z
      .object({
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
    manifestbytes: z
      .number()
      .int()
      .positive()
      .default(4 * 1024 * 1024),
    blobbytes: z.number().int().positive().optional(),
  })
  .strict();

// Debian's config.yml turns on the storage health check. Sluice's /healthz probes storage on every call,
// so the check is always on, at least as often as any interval, and reports the first failure.
const healthSchema = z
  .object({
    storagedriver: z
      .object({
        enabled: z.boolean().optional(),
        interval: duration.optional(),
        threshold: z.number().int().positive().optional(),
      })
      .strict()
      .optional(),
  })
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
    // Approved upstream images (src/upstream, src/policy/flows.ts, src/proxy): where images come from and which may come in.
    upstreams: upstreamsSchema.optional(),
    flows: flowsSchema.optional(),
    // Mirror jobs (src/sync): follow upstream images on a schedule, within the same flows.
    mirrors: mirrorsSchema.optional(),
    // Signatures (src/sign, src/policy/trust.ts): which images need whose cosign signature, where they move.
    trust: trustSchema.optional(),
    // Distribution's notifications, journaled before each answer and delivered apart from requests (src/events).
    notifications: notificationsSchema.optional(),
    // Distribution's pull-through cache block: one upstream for the whole registry, every image allowed.
    proxy: proxySchema.optional(),
    // Which tags stay (src/policy/retention.ts), applied by the collector (storage.gc, `sluice gc`): top level,
    // beside flows and mirrors, because it is policy in the same pattern language, not a storage setting.
    retention: retentionSchema.optional(),
    // The web UI and its JSON API (src/ui), on by default.
    ui: uiConfigSchema.optional(),
  })
  .strict();

/** A loaded, validated configuration. */
export type Config = z.infer<typeof configSchema>;
