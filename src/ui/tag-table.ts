import type { Digest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/name.js';
import { limiter } from '../async/limit.js';
import { readPulls } from '../gc/pulls.js';
import type { StorageDriver } from '../storage/driver.js';
import { tagCurrentPath } from '../storage/layout.js';
import type { RepositoryStore } from '../storage/repository.js';
import { ManifestSummaries, type PlatformSize } from './manifest-summary.js';

/** One row of a repository page: a tag, not an artifact (Harbor #17704). */
export interface TagRow {
  tag: string;
  digest: Digest;
  mediaType: string;
  kind: 'image' | 'index' | 'unreadable';
  artifactType?: string;
  /** Bytes of the image, or of every platform the repository holds for an index. */
  size: number;
  platforms: PlatformSize[];
  /** When the tag was last pointed at its manifest (its link's modification time), ISO 8601. */
  pushed?: string;
  /** Last pull by tag, from `storage.gc.pulls`, ISO 8601. */
  lastPulled?: string;
  /** Signatures, attestations and SBOMs next to the image (cosign tags and referrers); verified per page row. */
  accessories: number;
}

/** A repository's tags as list pages use them, built once and kept until it changes or ages out. */
export interface TagTable {
  repository: string;
  rows: TagRow[];
  /** Bytes of every distinct manifest the tags name (a manifest two tags share counts once). */
  size: number;
  lastPush?: string;
  builtAt: number;
  /** How long the build took: a big table is rebuilt less often, so its rebuilds never take most of the time. */
  buildMs: number;
  /** Rows sorted by an order (`size desc`), made on first use: a table is read far more often than it changes. */
  sorted: Map<string, TagRow[]>;
}

/** Cosign's tags for signatures, attestations and SBOMs: accessories of an image, not rows of their own. */
export const COSIGN_TAG = /^(sha256)-([a-f0-9]{64})\.(sig|att|sbom)$/;

/** A table older than this (or than 20 times its build time) is rebuilt in the background while it is served. */
const FRESH_MS = 10_000;
/** Storage reads at once while building one table. */
const PARALLEL = 16;

/** A table's rows in an order, sorted once per table. */
export function sortedRows(table: TagTable, key: string, compare: (a: TagRow, b: TagRow) => number): TagRow[] {
  let rows = table.sorted.get(key);
  if (!rows) {
    rows = table.rows.slice().sort(compare);
    table.sorted.set(key, rows);
  }
  return rows;
}

/** Cached tag tables by repository, rebuilt in the background when stale, dropped when this process writes. */
export class TagTables {
  private readonly tables = new Map<string, TagTable>();
  private readonly building = new Map<string, Promise<TagTable>>();
  readonly summaries: ManifestSummaries;

  constructor(
    private readonly driver: StorageDriver,
    readBlob: (d: Digest) => Promise<Buffer | null>,
    private readonly repoOf: (name: RepositoryName) => RepositoryStore,
    /** Reads a repository's referrers index once; the function it gives counts the referrers of a subject. */
    private readonly scanReferrers: (repo: RepositoryStore) => Promise<(subject: Digest) => number>,
    private readonly maxTables = 2_000,
  ) {
    this.summaries = new ManifestSummaries(readBlob);
  }

  /** Forgets a repository's table (after a push or delete through this process). */
  invalidate(repository: string): void {
    this.tables.delete(repository);
  }

  /** The table of a repository: the cached one (refreshed behind the answer when stale), or a new one. */
  async get(repository: RepositoryName): Promise<TagTable> {
    const hit = this.tables.get(repository);
    if (hit) {
      if (Date.now() - hit.builtAt > Math.max(FRESH_MS, 20 * hit.buildMs))
        this.build(repository).catch(() => undefined);
      return hit;
    }
    return this.build(repository);
  }

  /**
   * The cached table only, or undefined (never waits on storage): for list pages that must not wait. A stale
   * one is rebuilt in the background, two at a time, so a page of 50 rows never sets off 50 rebuilds at once.
   */
  peek(repository: RepositoryName): TagTable | undefined {
    const hit = this.tables.get(repository);
    if (hit && Date.now() - hit.builtAt > Math.max(FRESH_MS, 20 * hit.buildMs) && !this.building.has(repository)) {
      this.background(() => this.build(repository)).catch(() => undefined);
    }
    return hit;
  }

  private readonly background = limiter(2);

  /** Builds a repository's table once however many callers ask at the same moment. */
  build(repository: RepositoryName): Promise<TagTable> {
    let p = this.building.get(repository);
    if (!p) {
      p = this.read(repository).finally(() => this.building.delete(repository));
      this.building.set(repository, p);
      p.then(
        (t) => {
          if (this.tables.size >= this.maxTables) this.tables.delete(this.tables.keys().next().value!);
          this.tables.set(repository, t);
        },
        () => undefined,
      );
    }
    return p;
  }

  private async read(repository: RepositoryName): Promise<TagTable> {
    const started = Date.now();
    const repo = this.repoOf(repository);
    const all = await repo.tags();
    const signed = new Map<string, number>();
    const tags: string[] = [];
    for (const t of all) {
      const m = COSIGN_TAG.exec(t);
      if (m) signed.set(`${m[1]}:${m[2]}`, (signed.get(`${m[1]}:${m[2]}`) ?? 0) + 1);
      else tags.push(t);
    }
    const pulls = await readPulls(this.driver, repository).catch(() => undefined);
    const referrers = await this.scanReferrers(repo);
    const limit = limiter(PARALLEL);
    const rows = await Promise.all(
      tags.map((tag) =>
        limit(() => this.row(repo, tag, (d) => (signed.get(d) ?? 0) + referrers(d), pulls?.tags.get(tag))),
      ),
    );
    const present = rows.filter((r): r is TagRow => r !== undefined);
    const distinct = new Map(present.map((r) => [r.digest, r.size]));
    const lastPush = present.reduce<string | undefined>(
      (a, r) => (r.pushed && (!a || r.pushed > a) ? r.pushed : a),
      undefined,
    );
    const size = [...distinct.values()].reduce((n, s) => n + s, 0);
    const builtAt = Date.now();
    return {
      repository,
      rows: present,
      size,
      ...(lastPush ? { lastPush } : {}),
      builtAt,
      buildMs: builtAt - started,
      sorted: new Map(),
    };
  }

  private async row(
    repo: RepositoryStore,
    tag: string,
    accessories: (d: Digest) => number,
    pulled: number | undefined,
  ): Promise<TagRow | undefined> {
    const digest = await repo.resolveTag(tag);
    // Deleted between the listing and the read.
    if (!digest) return undefined;
    const [s, info] = await Promise.all([
      this.summaries.of(repo, digest),
      this.driver.stat(tagCurrentPath(repo.name, tag)),
    ]);
    return {
      tag,
      digest,
      mediaType: s.mediaType,
      kind: s.kind,
      ...(s.artifactType ? { artifactType: s.artifactType } : {}),
      size: s.size,
      platforms: s.platforms,
      ...(info ? { pushed: info.modified.toISOString() } : {}),
      ...(pulled ? { lastPulled: new Date(pulled).toISOString() } : {}),
      accessories: accessories(digest),
    };
  }
}
