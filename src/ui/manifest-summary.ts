import type { Digest } from '../oci/digest.js';
import { parseManifest, type Manifest } from '../oci/manifest.js';
import { formatPlatform } from '../oci/platform.js';
import type { RepositoryStore } from '../storage/repository.js';

/** One platform of an index as a tag row shows it: its own manifest and its own size. */
export interface PlatformSize {
  platform: string;
  digest: Digest;
  /** Manifest, config and layers of that platform alone; the descriptor's size when the child is absent. */
  size: number;
  /** False when the index names the platform but this repository does not hold it (a partial mirror). */
  present: boolean;
}

/** What a list page needs of one manifest: its kind, total size and platforms. Immutable, like the manifest. */
export interface ManifestSummary {
  mediaType: string;
  kind: 'image' | 'index' | 'unreadable';
  /** For an image: manifest + config + layers. For an index: the index and every child it holds. */
  size: number;
  platforms: PlatformSize[];
  artifactType?: string;
  subject?: Digest;
}

/** Summaries kept per process: a digest's summary never changes, so only the count is bounded. */
const MAX_ENTRIES = 100_000;

function imageBytes(m: Manifest, own: number): number {
  if (m.kind !== 'image') return own;
  return own + m.config.size + m.layers.reduce((n, l) => n + l.size, 0);
}

/**
 * Summaries of manifests by digest, read once per process: list pages of 10,000 tags read each distinct
 * manifest (and index child) once, and never again while the process lives.
 */
export class ManifestSummaries {
  private readonly known = new Map<Digest, ManifestSummary>();

  /** `readBlob` reads a small blob (an image config) whole, or null. */
  constructor(private readonly readBlob: (d: Digest) => Promise<Buffer | null>) {}

  /** An image's own platform, from its config (at most 64 KiB read); undefined for artifacts and odd configs. */
  private async platformOf(m: Manifest): Promise<string | undefined> {
    if (
      m.kind !== 'image' ||
      !/config\.v1\+json|container\.image\.v1\+json/.test(m.config.mediaType) ||
      m.config.size > 65_536
    )
      return undefined;
    const bytes = await this.readBlob(m.config.digest).catch(() => null);
    if (!bytes) return undefined;
    try {
      const c = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
      if (typeof c['os'] !== 'string' || typeof c['architecture'] !== 'string') return undefined;
      return formatPlatform({
        os: c['os'],
        architecture: c['architecture'],
        ...(typeof c['variant'] === 'string' ? { variant: c['variant'] } : {}),
      });
    } catch {
      return undefined;
    }
  }

  /** The summary of a manifest this repository holds; an unreadable summary when it is absent or invalid. */
  async of(repo: RepositoryStore, digest: Digest): Promise<ManifestSummary> {
    const hit = this.known.get(digest);
    if (hit) return hit;
    const s = await this.read(repo, digest);
    // An absent manifest may be pushed a moment later: only what was read is kept.
    if (s.kind !== 'unreadable') {
      if (this.known.size >= MAX_ENTRIES) this.known.delete(this.known.keys().next().value!);
      this.known.set(digest, s);
    }
    return s;
  }

  private async parsed(repo: RepositoryStore, digest: Digest): Promise<{ m: Manifest; size: number } | undefined> {
    const stored = await repo.getManifest(digest);
    if (!stored) return undefined;
    try {
      return { m: parseManifest(stored.bytes), size: stored.bytes.length };
    } catch {
      return undefined;
    }
  }

  private async read(repo: RepositoryStore, digest: Digest): Promise<ManifestSummary> {
    const got = await this.parsed(repo, digest);
    if (!got) return { mediaType: '', kind: 'unreadable', size: 0, platforms: [] };
    const { m, size } = got;
    const base = {
      mediaType: m.mediaType,
      ...(m.artifactType ? { artifactType: m.artifactType } : {}),
      ...(m.subject ? { subject: m.subject.digest } : {}),
    };
    if (m.kind === 'image') {
      const own = imageBytes(m, size);
      const platform = await this.platformOf(m);
      return {
        ...base,
        kind: 'image',
        size: own,
        platforms: platform ? [{ platform, digest, size: own, present: true }] : [],
      };
    }
    const platforms: PlatformSize[] = [];
    let total = size;
    for (const d of m.manifests) {
      const child = await this.parsed(repo, d.digest);
      const label = d.platform ? formatPlatform(d.platform) : 'unknown';
      const bytes = child ? imageBytes(child.m, child.size) : d.size;
      if (child) total += bytes;
      platforms.push({ platform: label, digest: d.digest, size: bytes, present: child !== undefined });
    }
    return { ...base, kind: 'index', size: total, platforms };
  }
}
