import { z } from 'zod';
import { isDuration } from '../config/duration.js';

const list = z.union([z.string().min(1), z.array(z.string().min(1))]).transform((x) => (Array.isArray(x) ? x : [x]));
const duration = z.string().refine(isDuration, 'expected a duration such as 30s, 5m, 1h');

/** One mirror job as written under `mirrors:`. */
export const mirrorSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]*$/, 'lower-case letters, digits, ".", "_" and "-"')
      .optional(),
    images: list.describe('upstream repositories by full name; globs are expanded from the upstream catalog'),
    tags: z
      .object({
        include: list.optional().describe('globs, or /regular expressions/'),
        exclude: list.optional(),
        semver: z
          .string()
          .optional()
          .describe('a semver range such as ">=1.0.0 <2"; tags that are not versions are left out'),
        latest: z
          .number()
          .int()
          .positive()
          .optional()
          .describe('only the N highest versions (semver order) of what is left'),
      })
      .strict()
      .optional(),
    digests: z.array(z.string()).optional().describe('pinned digests, copied whatever their tags'),
    platforms: z
      .array(z.string())
      .optional()
      .describe('platforms of an index to copy; the index is kept whole unless rewriteindex'),
    rewriteindex: z.boolean().optional(),
    referrers: z.boolean().optional().describe('bring referrers and cosign sha256-<hex>.sig/.att/.sbom tags along'),
    to: z
      .string()
      .optional()
      .describe(
        'destination: this registry (default) or a transport reference prefix such as docker://host/prefix or oci:/dir',
      ),
    prefix: z
      .string()
      .optional()
      .describe('a name prefix at the destination (default: the upstream name as it is, docker.io/...)'),
    destname: z
      .enum(['path', 'base', 'scoped'])
      .optional()
      .describe(
        "after the prefix: the repository's path (default), its last segment (skopeo sync's naming), or registry host and path (skopeo sync --scoped)",
      ),
    every: duration.optional(),
    cron: z.string().optional(),
    jitter: duration.optional(),
    prune: z.boolean().optional().describe('delete destination tags that left the selection or vanished upstream'),
    maxprune: z.number().int().nonnegative().default(10),
    backup: z
      .string()
      .optional()
      .describe('keep the previous target of a moved tag under this tag template: {tag}, {date}'),
    parallel: z
      .number()
      .int()
      .positive()
      .max(32)
      .optional()
      .describe('images of a repository copied at once (default 3)'),
    ratelimit: z
      .object({
        min: z
          .number()
          .int()
          .nonnegative()
          .default(10)
          .describe('below this RateLimit-Remaining, wait instead of spending the rest'),
        retry: duration.default('15m').describe('how long to wait before checking again'),
        rps: z.number().positive().optional().describe('at most this many upstream requests a second'),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((m) => !(m.every && m.cron), 'give every or cron, not both');

/** The `mirrors:` section. */
export const mirrorsSchema = z.array(mirrorSchema);

/** One mirror job as configured. */
export type MirrorConfig = z.infer<typeof mirrorSchema>;

/** The name a mirror job gives a job without one: its first image, made file-name safe. */
export function jobName(m: MirrorConfig, index: number): string {
  return (
    m.name ??
    (m.images[0]
      ? m.images[0]
          .toLowerCase()
          .replace(/[^a-z0-9._-]+/g, '-')
          .replace(/^-+|-+$/g, '')
      : `job-${index + 1}`)
  );
}

/** The problem with the mirror jobs' names (two alike), or undefined. */
export function mirrorNamesProblem(mirrors: readonly MirrorConfig[] = []): string | undefined {
  const names = mirrors.map((m, i) => jobName(m, i));
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  return dup === undefined ? undefined : `mirrors: two jobs are named ${dup}; give each a distinct name`;
}
