import type { Digest } from '../oci/digest.js';
import { isDigest, type DigestAlgorithm } from '../oci/digest.js';
import { isTag, type RepositoryName } from '../oci/name.js';
import type { StorageDriver } from './driver.js';
import type { BlobStore } from './blobs.js';
import {
  checkDigest,
  checkRepositoryName,
  checkTag,
  layerLinkPath,
  referrerLinkPath,
  referrersPath,
  revisionLinkPath,
  revisionsPath,
  tagCurrentPath,
  tagIndexPath,
  tagPath,
  tagsPath,
} from './layout.js';
import { listLinkedDigests, readLink, writeLink } from './links.js';
import { lockPerOwner } from './keyed-lock.js';

/** A manifest as stored: its digest and exact bytes. */
export interface StoredManifest {
  digest: Digest;
  bytes: Buffer;
}

/**
 * Sorted tag lists by driver and directory, reused while the directory's mtime is unchanged: every page of
 * a paginated tag list would otherwise read and sort all the repository's tags again.
 */
const tagLists = new WeakMap<StorageDriver, Map<string, { mtime: number; tags: string[] }>>();
const STABLE_DIR_MS = 2000;

/**
 * Tag locks by driver: reading a tag, deciding whether moving it is an overwrite and writing it must be one
 * step, or concurrent pushes all see the tag absent and all "create" it. The lock holds within this process
 * only; across processes `createTag` closes the race where storage has conditional writes (S3).
 */
const tagLocks = lockPerOwner();

/** One repository's view of storage: its blob links, manifest revisions, tags and referrers. */
export class RepositoryStore {
  constructor(
    private readonly driver: StorageDriver,
    private readonly blobs: BlobStore,
    readonly name: RepositoryName,
  ) {
    checkRepositoryName(name);
  }

  /** The size of a blob linked into this repository, or null. */
  async blobSize(d: Digest): Promise<number | null> {
    if (!(await readLink(this.driver, layerLinkPath(this.name, d)))) return null;
    return this.blobs.size(d);
  }

  /** Makes a stored blob part of this repository. */
  linkBlob(d: Digest): Promise<void> {
    return writeLink(this.driver, layerLinkPath(this.name, d), d);
  }

  /** Removes a blob from this repository (its bytes stay until garbage collection). */
  async unlinkBlob(d: Digest): Promise<boolean> {
    if (!(await readLink(this.driver, layerLinkPath(this.name, d)))) return false;
    await this.driver.delete(layerLinkPath(this.name, d).replace(/\/link$/, ''));
    return true;
  }

  /** True when the manifest is a revision of this repository. */
  async hasManifest(d: Digest): Promise<boolean> {
    return (await readLink(this.driver, revisionLinkPath(this.name, d))) !== null;
  }

  /** Resolves a tag to its digest, or null. */
  resolveTag(tag: string): Promise<Digest | null> {
    return readLink(this.driver, tagCurrentPath(this.name, tag));
  }

  /** Reads a manifest by tag or digest; null when this repository does not have it. */
  async getManifest(reference: string): Promise<StoredManifest | null> {
    const digest = isDigest(reference) ? reference : await this.resolveTag(reference);
    if (!digest || !(await this.hasManifest(digest))) return null;
    const bytes = await this.blobs.read(digest);
    return bytes ? { digest, bytes } : null;
  }

  /** Stores manifest bytes (already validated) as a revision, and records its subject for referrers. */
  async putManifest(bytes: Uint8Array, subject?: Digest, algorithm: DigestAlgorithm = 'sha256'): Promise<Digest> {
    // Checked before the first write, so a bad subject leaves no revision behind.
    if (subject !== undefined) checkDigest(subject);
    const digest = await this.blobs.put(bytes, algorithm);
    await this.writeRevision(digest, subject);
    return digest;
  }

  private async writeRevision(d: Digest, subject?: Digest): Promise<void> {
    await writeLink(this.driver, revisionLinkPath(this.name, d), d);
    if (subject) await writeLink(this.driver, referrerLinkPath(this.name, subject, d), d);
  }

  /**
   * Called by a push once its tags are written: a delete of the same digest (on another node) may have
   * removed the revision meanwhile, having listed the tags before this push wrote them. If one of the
   * push's tags still names the digest, the delete came first and the revision is written again; if the
   * delete took the tags too, it came after this push, and both stay gone.
   */
  async keepRevision(d: Digest, tags: readonly string[], subject?: Digest): Promise<void> {
    if (tags.length === 0 || (await this.hasManifest(d))) return;
    for (const t of tags) {
      if ((await this.resolveTag(t)) === d) return this.writeRevision(d, subject);
    }
  }

  /** Points a tag at a manifest, keeping Distribution's tag history index. */
  async tag(tag: string, d: Digest): Promise<void> {
    checkTag(tag);
    checkDigest(d);
    await writeLink(this.driver, tagIndexPath(this.name, tag, d), d);
    await writeLink(this.driver, tagCurrentPath(this.name, tag), d);
  }

  /**
   * Points a tag that must not exist yet at a manifest, with a write the storage refuses when another
   * process created the tag first (call only where `driver.exclusiveCreate()` is true). False when it lost.
   */
  async createTag(tag: string, d: Digest): Promise<boolean> {
    checkDigest(d);
    try {
      await this.driver.putContent(tagCurrentPath(this.name, tag), Buffer.from(d, 'utf8'), { ifAbsent: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
    // The history entry follows the tag here: had it gone first, a lost race would leave a stray entry.
    await writeLink(this.driver, tagIndexPath(this.name, tag, d), d);
    return true;
  }

  /**
   * Runs `fn` while no other caller in this process holds any of these tags of this repository: the caller
   * reads the tags, decides and writes them as one step.
   */
  withTagLock<T>(tags: readonly string[], fn: () => Promise<T>): Promise<T> {
    // NUL cannot occur in a repository name or a tag, so the key is unambiguous.
    return tagLocks(this.driver).run(
      tags.map((t) => `${this.name}\0${t}`),
      fn,
    );
  }

  /** Removes a tag; false when it did not exist. */
  async untag(tag: string): Promise<boolean> {
    if (!(await this.resolveTag(tag))) return false;
    await this.driver.delete(tagPath(this.name, tag));
    return true;
  }

  /**
   * Deletes a manifest revision and every tag that points at it; false when absent. Tags go first, then
   * the revision, then the tags are read again: a push of this digest under a tag the first listing
   * missed (another node's, racing) wins, and the revision is written back, so no tag is left naming a
   * revision that is gone. `keepRevision` closes the other order, a revision deleted after that push's
   * own check.
   */
  async deleteManifest(d: Digest, subject?: Digest): Promise<boolean> {
    if (!(await this.hasManifest(d))) return false;
    for (const t of await this.tagsNaming(d)) await this.untag(t);
    await this.driver.delete(revisionLinkPath(this.name, d).replace(/\/link$/, ''));
    if (subject) await this.driver.delete(referrerLinkPath(this.name, subject, d).replace(/\/link$/, ''));
    if ((await this.tagsNaming(d)).length > 0) await this.writeRevision(d, subject);
    return true;
  }

  /** The tags whose current link names `d`. */
  async tagsNaming(d: Digest): Promise<string[]> {
    const out: string[] = [];
    for (const t of await this.tags()) if ((await this.resolveTag(t)) === d) out.push(t);
    return out;
  }

  /** All tags, sorted; a folder outside the tag grammar (not written through this layout) is no tag. */
  async tags(): Promise<string[]> {
    const dir = tagsPath(this.name);
    // Only the filesystem gives directories an mtime that changes with their entries.
    if (this.driver.name !== 'filesystem') return (await this.driver.list(dir)).filter(isTag).sort();
    const info = await this.driver.stat(dir);
    if (!info) return [];
    const mtime = info.modified.getTime();
    let cache = tagLists.get(this.driver);
    if (!cache) {
      cache = new Map();
      tagLists.set(this.driver, cache);
    }
    const hit = cache.get(dir);
    if (hit && hit.mtime === mtime) return hit.tags.slice();
    const names = (await this.driver.list(dir)).filter(isTag).sort();
    // A directory changed within the last moments may change again within the same mtime tick: not cached.
    if (Date.now() - mtime > STABLE_DIR_MS) {
      if (cache.size >= 1000) cache.delete(cache.keys().next().value!);
      cache.set(dir, { mtime, tags: names.slice() });
    }
    return names;
  }

  /** Digests of every manifest revision. */
  revisions(): Promise<Digest[]> {
    return listLinkedDigests(this.driver, revisionsPath(this.name));
  }

  /** Digests of the manifests that name `subject`, from Sluice's referrers index. */
  async referrers(subject: Digest): Promise<Digest[]> {
    const found = await listLinkedDigests(this.driver, referrersPath(this.name, subject));
    const live: Digest[] = [];
    for (const d of found) if (await this.hasManifest(d)) live.push(d);
    return live;
  }

  /** True when the repository holds anything at all. */
  async exists(): Promise<boolean> {
    const top = await this.driver.list(`${tagsPath(this.name).replace(/\/_manifests\/tags$/, '')}`);
    return top.includes('_manifests') || top.includes('_layers');
  }
}
