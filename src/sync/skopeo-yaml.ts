import { parse as parseYaml } from 'yaml';
import { isDigest } from '../oci/digest.js';
import { upstreamSchema, type UpstreamConfig } from '../upstream/config.js';
import type { MirrorConfig } from './config.js';

/** What skopeo's sync YAML describes, as Sluice's vocabulary: upstreams and mirror jobs. */
export interface SkopeoSync {
  upstreams: Record<string, UpstreamConfig>;
  jobs: MirrorConfig[];
}

type Entry = {
  images?: Record<string, string[] | null>;
  'images-by-tag-regex'?: Record<string, string>;
  'images-by-semver'?: Record<string, string>;
  credentials?: { username?: string; password?: string };
  'tls-verify'?: boolean;
  'cert-dir'?: string;
};

const KNOWN = new Set(['images', 'images-by-tag-regex', 'images-by-semver', 'credentials', 'tls-verify', 'cert-dir']);

function isLoopback(host: string): boolean {
  const h = host.replace(/:\d+$/, '');
  return h === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * Reads skopeo sync's YAML (`skopeo sync --src yaml`) as it is: per registry `images` (tags, digests,
 * or [] for every tag), `images-by-tag-regex`, `images-by-semver`, `credentials`, `tls-verify`.
 * Each image becomes a job whose destination name is the image's path, as skopeo names it.
 */
export function readSkopeoYaml(text: string, file: string, scoped = false): SkopeoSync {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new Error(`${file} is not valid YAML: ${(e as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc))
    throw new Error(`${file}: expected a mapping of registries`);
  const out: SkopeoSync = { upstreams: {}, jobs: [] };
  for (const [registry, raw] of Object.entries(doc as Record<string, Entry>)) {
    if (!raw || typeof raw !== 'object') throw new Error(`${file}: ${registry}: expected a mapping`);
    for (const k of Object.keys(raw))
      if (!KNOWN.has(k))
        throw new Error(`${file}: ${registry}.${k} is not a skopeo sync key (known: ${[...KNOWN].join(', ')})`);
    const up: Record<string, unknown> = { tlsverify: raw['tls-verify'] ?? true };
    // skopeo talks plain HTTP to a registry whose TLS is not verified; Sluice does so for loopback hosts.
    if (raw['tls-verify'] === false || isLoopback(registry))
      up.url = `${isLoopback(registry) || raw['tls-verify'] === false ? 'http' : 'https'}://${registry}`;
    if (raw.credentials?.username !== undefined) {
      up.username = raw.credentials.username;
      up.password = raw.credentials.password ?? '';
    }
    out.upstreams[registry] = upstreamSchema.parse({ timeout: '30s', ...up });
    const name = (repo: string) => `${registry}/${repo}`;
    for (const [repo, refs] of Object.entries(raw.images ?? {})) {
      const list = refs ?? [];
      const tags = list.filter((r) => !isDigest(r));
      const digests = list.filter((r) => isDigest(r));
      const job: MirrorConfig = { images: [name(repo)], prefix: '', maxprune: 10 };
      if (list.length > 0) {
        // Listed tags only; a list of digests alone copies no tag.
        job.tags = {
          include: tags.length ? tags.map((t) => `/^${t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$/`) : ['/^$/'],
        };
        if (digests.length) job.digests = digests;
      }
      out.jobs.push(job);
    }
    for (const [repo, re] of Object.entries(raw['images-by-tag-regex'] ?? {}))
      out.jobs.push({ images: [name(repo)], prefix: '', maxprune: 10, tags: { include: [`/${re}/`] } });
    for (const [repo, range] of Object.entries(raw['images-by-semver'] ?? {}))
      out.jobs.push({ images: [name(repo)], prefix: '', maxprune: 10, tags: { semver: range } });
  }
  // Job names (state files) from the image and its position: one image may have several entries.
  out.jobs.forEach((j, i) => {
    // skopeo names a copy by the image's last path segment, or (--scoped) by registry and path.
    j.destname = scoped ? 'scoped' : 'base';
    j.name = `${i + 1}-${j.images[0]!.toLowerCase().replace(/[^a-z0-9._-]+/g, '-')}`.slice(0, 100);
  });
  return out;
}
