import { isDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { effectiveArtifactType, parseManifest, type Manifest } from '../oci/manifest.js';
import type { RepositoryName } from '../oci/name.js';
import type { RegistryContext } from '../registry/context.js';
import type { RepositoryStore } from '../storage/repository.js';
import { COSIGN_TAG } from './tag-table.js';

/** Configs larger than this are not read for the page (a config is a few KiB; this one is not an image's). */
const CONFIG_MAX = 4 * 1024 * 1024;
/** Referrers shown per subject, and how deep the tree goes (signatures of attestations of an image). */
const REFERRERS_MAX = 100;
const DEPTH_MAX = 3;

/** What an image's config says, as the page shows it. */
export interface ConfigView {
  digest: Digest;
  size: number;
  os?: string;
  architecture?: string;
  created?: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  labels?: Record<string, string>;
  workingDir?: string;
  user?: string;
  exposedPorts?: string[];
  history: { created?: string; createdBy?: string; comment?: string; emptyLayer?: boolean }[];
  /** Set instead of the fields when the config could not be shown. */
  problem?: string;
}

/** One node of the referrers tree: a signature, attestation or SBOM and what refers to it in turn. */
export interface ReferrerNode {
  digest: Digest;
  mediaType: string;
  artifactType?: string;
  size: number;
  /** `referrer` (OCI subject) or the cosign tag it was found under. */
  via: string;
  /** What it is, in a word: signature, attestation, sbom or artifact. */
  role: 'signature' | 'attestation' | 'sbom' | 'artifact';
  annotations?: Record<string, string>;
  layers: { mediaType: string; size: number; annotations?: Record<string, string> }[];
  referrers: ReferrerNode[];
}

/** An image page: the manifest (exact bytes), its parts, its config and its referrers. */
export interface ImageDetail {
  repository: string;
  reference: string;
  digest: Digest;
  mediaType: string;
  kind: 'image' | 'index';
  /** The manifest as stored, as text (never re-serialised). */
  manifest: string;
  annotations?: Record<string, string>;
  artifactType?: string;
  subject?: Digest;
  config?: ConfigView;
  layers?: { digest: Digest; mediaType: string; size: number }[];
  children?: { digest: Digest; mediaType: string; size: number; platform?: string; present: boolean }[];
  referrers: ReferrerNode[];
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] | undefined =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The fields of an image config JSON a page shows; anything else in it is left out. */
export function configView(bytes: Buffer, d: Descriptor): ConfigView {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { digest: d.digest, size: d.size, history: [], problem: 'the config is not JSON' };
  }
  if (!isObject(raw))
    return { digest: d.digest, size: d.size, history: [], problem: 'the config is not a JSON object' };
  const c = isObject(raw['config']) ? raw['config'] : {};
  const labels = isObject(c['Labels'])
    ? Object.fromEntries(Object.entries(c['Labels']).filter(([, v]) => typeof v === 'string'))
    : undefined;
  const history = (Array.isArray(raw['history']) ? raw['history'] : []).filter(isObject).map((h) => ({
    ...(str(h['created']) ? { created: str(h['created']) } : {}),
    ...(str(h['created_by']) ? { createdBy: str(h['created_by']) } : {}),
    ...(str(h['comment']) ? { comment: str(h['comment']) } : {}),
    ...(h['empty_layer'] === true ? { emptyLayer: true } : {}),
  }));
  const out: ConfigView = { digest: d.digest, size: d.size, history };
  const put = <K extends keyof ConfigView>(k: K, v: ConfigView[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  put('os', str(raw['os']));
  put('architecture', str(raw['architecture']));
  put('created', str(raw['created']));
  put('entrypoint', strings(c['Entrypoint']));
  put('cmd', strings(c['Cmd']));
  put('env', strings(c['Env']));
  put('labels', labels as Record<string, string> | undefined);
  put('workingDir', str(c['WorkingDir']));
  put('user', str(c['User']));
  put('exposedPorts', isObject(c['ExposedPorts']) ? Object.keys(c['ExposedPorts']) : undefined);
  return out;
}

async function readManifest(repo: RepositoryStore, d: Digest): Promise<{ m: Manifest; bytes: Buffer } | undefined> {
  const stored = await repo.getManifest(d);
  if (!stored) return undefined;
  try {
    return { m: parseManifest(stored.bytes), bytes: stored.bytes };
  } catch {
    return undefined;
  }
}

/** What a referrer is, by the cosign tag it hangs under, or by its artifact or layer media types. */
export function roleOf(via: string, types: string[]): ReferrerNode['role'] {
  const suffix = /\.(sig|att|sbom)$/.exec(via)?.[1];
  if (suffix) return suffix === 'sig' ? 'signature' : suffix === 'att' ? 'attestation' : 'sbom';
  const t = types.join(' ');
  if (/simplesigning|sigstore\.bundle|notary|jose\+json|application\/cose/.test(t)) return 'signature';
  if (/spdx|cyclonedx|syft/.test(t)) return 'sbom';
  if (/in-toto|dsse|provenance|vuln|attestation/.test(t)) return 'attestation';
  return 'artifact';
}

/** Referrers of `subject`: OCI referrers (Sluice's index and the scan) and cosign's `sha256-<hex>.{sig,att,sbom}` tags. */
async function referrersOf(
  ctx: RegistryContext,
  repo: RepositoryStore,
  tags: string[],
  subject: Digest,
  depth: number,
): Promise<ReferrerNode[]> {
  if (depth > DEPTH_MAX) return [];
  const found = new Map<Digest, string>();
  for (const d of [...(await repo.referrers(subject)), ...ctx.scanner.referrersOf(repo.name, subject)])
    found.set(d, 'referrer');
  const hex = subject.slice('sha256:'.length);
  for (const t of tags) {
    const m = COSIGN_TAG.exec(t);
    if (!m || m[2] !== hex || subject.startsWith('sha256:') === false) continue;
    const d = await repo.resolveTag(t);
    if (d && !found.has(d)) found.set(d, `tag ${t}`);
  }
  const out: ReferrerNode[] = [];
  for (const [d, via] of [...found].slice(0, REFERRERS_MAX)) {
    const got = await readManifest(repo, d);
    if (!got) continue;
    const { m, bytes } = got;
    if (via === 'referrer' && m.subject?.digest !== subject) continue;
    const at = effectiveArtifactType(m);
    out.push({
      digest: d,
      mediaType: m.mediaType,
      ...(at ? { artifactType: at } : {}),
      size: bytes.length,
      via,
      role: roleOf(via, [at ?? '', ...(m.kind === 'image' ? m.layers.map((l) => l.mediaType) : [])]),
      ...(m.annotations ? { annotations: m.annotations } : {}),
      layers:
        m.kind === 'image'
          ? m.layers.map((l) => ({
              mediaType: l.mediaType,
              size: l.size,
              ...(l.annotations ? { annotations: l.annotations } : {}),
            }))
          : [],
      referrers: await referrersOf(ctx, repo, tags, d, depth + 1),
    });
  }
  return out;
}

/** Reads one image (by tag or digest) of a repository for its page; undefined when the repository lacks it. */
export async function imageDetail(
  ctx: RegistryContext,
  name: RepositoryName,
  reference: string,
): Promise<ImageDetail | undefined> {
  const repo = ctx.repo(name);
  const digest = isDigest(reference) ? reference : await repo.resolveTag(reference);
  if (!digest) return undefined;
  const got = await readManifest(repo, digest);
  if (!got) return undefined;
  const { m, bytes } = got;
  await ctx.scanner.refresh(repo);
  const tags = await repo.tags();
  const at = effectiveArtifactType(m);
  const out: ImageDetail = {
    repository: name,
    reference,
    digest,
    mediaType: m.mediaType,
    kind: m.kind,
    manifest: bytes.toString('utf8'),
    ...(m.annotations ? { annotations: m.annotations } : {}),
    ...(at ? { artifactType: at } : {}),
    ...(m.subject ? { subject: m.subject.digest } : {}),
    referrers: await referrersOf(ctx, repo, tags, digest, 1),
  };
  if (m.kind === 'image') {
    out.layers = m.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size }));
    out.config = await readConfig(ctx, repo, m.config);
  } else {
    out.children = [];
    for (const c of m.manifests) {
      const p = c.platform
        ? `${c.platform.os}/${c.platform.architecture}${c.platform.variant ? `/${c.platform.variant}` : ''}`
        : undefined;
      out.children.push({
        digest: c.digest,
        mediaType: c.mediaType,
        size: c.size,
        ...(p ? { platform: p } : {}),
        present: await repo.hasManifest(c.digest),
      });
    }
  }
  return out;
}

async function readConfig(ctx: RegistryContext, repo: RepositoryStore, d: Descriptor): Promise<ConfigView> {
  const empty = { digest: d.digest, size: d.size, history: [] };
  if (d.size > CONFIG_MAX) return { ...empty, problem: `the config is ${d.size} bytes, more than a page shows` };
  const size = await repo.blobSize(d.digest);
  if (size === null) return { ...empty, problem: 'the config blob is not in this repository' };
  if (size > CONFIG_MAX) return { ...empty, problem: `the config is ${size} bytes, more than a page shows` };
  const bytes = await ctx.blobs.read(d.digest);
  if (!bytes) return { ...empty, problem: 'the config blob is missing' };
  return configView(bytes, d);
}
