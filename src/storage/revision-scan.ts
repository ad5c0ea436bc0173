import type { Digest } from '../oci/digest.js';
import { parseManifest, referencedBlobs, type Manifest } from '../oci/manifest.js';
import type { RepositoryName } from '../oci/name.js';
import type { Platform } from '../oci/platform.js';
import type { StorageDriver } from './driver.js';
import { referrerLinkPath } from './layout.js';
import { readLink, writeLink } from './links.js';
import type { RepositoryStore } from './repository.js';

/** Where an index lists a child manifest: the index and the child's platform. */
export interface IndexEntry {
  index: Digest;
  platform?: Platform;
}

interface RepoScan {
  seen: Set<Digest>;
  children: Map<Digest, IndexEntry[]>;
  referrers: Map<Digest, Set<Digest>>;
  /** Blobs (config, layers) the repository's image manifests reference, with their declared sizes. */
  blobs: Map<Digest, number>;
  running?: Promise<void>;
}

/** Manifests bigger than this are skipped by the scan (the registry refuses them anyway). */
const SCAN_LIMIT = 4 * 1024 * 1024;

/**
 * Reads each manifest revision of a repository once per process and remembers what it says.
 *
 * Why: revisions may be written into the same root by another registry (Distribution, Harbor)
 * that keeps no `_referrers` index, and a referrers query must still find them. Each scan lists
 * the revision links (one directory read), parses only revisions not seen before, and writes the
 * missing `_referrers` links, so the persistent index heals itself; it also records which index
 * lists which child, to explain a missing platform without re-reading every index.
 */
export class RevisionScanner {
  private readonly repos = new Map<string, RepoScan>();

  /** `persist: false` (a read-only registry) keeps what the scan finds in memory only. */
  constructor(
    private readonly driver: StorageDriver,
    private readonly persist = true,
  ) {}

  private state(name: RepositoryName): RepoScan {
    let s = this.repos.get(name);
    if (!s) {
      s = { seen: new Set(), children: new Map(), referrers: new Map(), blobs: new Map() };
      this.repos.set(name, s);
    }
    return s;
  }

  /** Brings the scan of a repository up to date with its revisions; concurrent callers share one scan. */
  async refresh(repo: RepositoryStore): Promise<void> {
    const s = this.state(repo.name);
    while (s.running) await s.running;
    const run = this.scan(repo, s);
    s.running = run;
    try {
      await run;
    } finally {
      if (s.running === run) s.running = undefined;
    }
  }

  private async scan(repo: RepositoryStore, s: RepoScan): Promise<void> {
    for (const rev of await repo.revisions()) {
      if (s.seen.has(rev)) continue;
      s.seen.add(rev);
      const stored = await repo.getManifest(rev);
      if (!stored || stored.bytes.length > SCAN_LIMIT) continue;
      let m: Manifest;
      try {
        m = parseManifest(stored.bytes);
      } catch {
        continue;
      }
      if (m.subject) {
        const set = s.referrers.get(m.subject.digest) ?? new Set<Digest>();
        set.add(rev);
        s.referrers.set(m.subject.digest, set);
        const link = referrerLinkPath(repo.name, m.subject.digest, rev);
        if (this.persist && !(await readLink(this.driver, link))) await writeLink(this.driver, link, rev);
      }
      if (m.kind === 'image') for (const d of referencedBlobs(m)) s.blobs.set(d.digest, d.size);
      if (m.kind === 'index') {
        for (const d of m.manifests) {
          const entry: IndexEntry = { index: rev };
          if (d.platform) entry.platform = d.platform;
          const list = s.children.get(d.digest) ?? [];
          list.push(entry);
          s.children.set(d.digest, list);
        }
      }
    }
  }

  /** Referrers of `subject` the scan found (they may since have been deleted); refresh first. */
  referrersOf(name: RepositoryName, subject: Digest): Digest[] {
    return [...(this.state(name).referrers.get(subject) ?? [])];
  }

  /**
   * The size a manifest of this repository declares for a blob, or undefined when none references it;
   * refresh first. (A deleted manifest's blobs stay known until the process restarts.)
   */
  referencedBlobSize(name: RepositoryName, blob: Digest): number | undefined {
    return this.state(name).blobs.get(blob);
  }

  /** The index (and platform) that lists `child`, among revisions still present; refresh first. */
  async indexListing(repo: RepositoryStore, child: Digest): Promise<IndexEntry | null> {
    for (const entry of this.state(repo.name).children.get(child) ?? []) {
      if (await repo.hasManifest(entry.index)) return entry;
    }
    return null;
  }
}
