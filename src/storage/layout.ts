import { isDigest, parseDigest, type Digest } from '../oci/digest.js';
import { isRepositoryName, isTag, type RepositoryName } from '../oci/name.js';
import type { StorageDriver } from './driver.js';
import { InvalidNameError } from './errors.js';

// Paths of the CNCF Distribution v2 storage layout. Every function checks the names and digests it is given
// against their grammar and throws InvalidNameError otherwise: the types say "validated", but a cast or a
// name from an upstream or an archive must still never become `..`, an absolute path or another folder.
const V2 = 'docker/registry/v2';

const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True when the text can be an upload session id (and so is safe to put in a path). */
export function isUploadId(id: string): boolean {
  return UPLOAD_ID.test(id);
}

/** The repository name, or InvalidNameError when it is outside the distribution spec's grammar. */
export function checkRepositoryName(name: string): RepositoryName {
  if (typeof name !== 'string' || !isRepositoryName(name)) throw new InvalidNameError('repository name', String(name));
  return name;
}

/** The tag, or InvalidNameError when it is outside the OCI tag grammar. */
export function checkTag(tag: string): string {
  if (typeof tag !== 'string' || !isTag(tag)) throw new InvalidNameError('tag', String(tag));
  return tag;
}

/** The digest, or InvalidNameError when it is not a well-formed digest of a supported algorithm. */
export function checkDigest(d: string): Digest {
  if (typeof d !== 'string' || !isDigest(d)) throw new InvalidNameError('digest', String(d));
  return d;
}

function split(d: Digest): { algorithm: string; hex: string } {
  const { algorithm, hex } = parseDigest(checkDigest(d));
  return { algorithm, hex };
}

/** Where a blob's bytes live: `blobs/<alg>/<first two hex>/<hex>/data`. */
export function blobDataPath(d: Digest): string {
  const { algorithm, hex } = split(d);
  return `${V2}/blobs/${algorithm}/${hex.slice(0, 2)}/${hex}/data`;
}

const BLOB_FOLDER = /^docker\/registry\/v2\/blobs\/[a-z0-9]+\/([0-9a-f]{2})\/([0-9a-f]+)$/;

/** True for a blob's own folder (`blobs/<alg>/<first two hex>/<hex>`), the one that holds its `data`. */
export function isBlobFolder(path: string): boolean {
  const m = BLOB_FOLDER.exec(path);
  return m !== null && m[2]!.startsWith(m[1]!);
}

/** The small file a registry process writes and deletes to prove the storage takes writes. */
export function healthProbePath(id: string | number): string {
  return `${V2}/.healthz-${id}`;
}

/** The root of all repositories. */
export const repositoriesRoot = `${V2}/repositories`;

/** Directories listed (and visited) at once by `walkRepositoryDirs`. */
const WALK_AT_ONCE = 16;

/**
 * Visits every directory under the repositories root with its children, as Distribution's walk does:
 * `_`-prefixed directories (`_manifests`, `_layers`, `_uploads`) are never descended into. At most
 * `WALK_AT_ONCE` directories are listed or visited at a time: a walk of 10,000 repositories that listed
 * them all at once held every listing and every visit in memory together.
 */
export async function walkRepositoryDirs(
  driver: StorageDriver,
  visit: (name: string, children: string[]) => Promise<void> | void,
): Promise<void> {
  const pending: string[] = [''];
  let busy = 0;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const worker = async (): Promise<void> => {
    for (;;) {
      if (failure) return;
      const rel = pending.pop();
      if (rel === undefined) {
        // Nothing queued: done when no other worker may still queue more, else wait for one to.
        if (busy === 0) return wake?.();
        await new Promise<void>((r) => {
          const before = wake;
          wake = () => {
            before?.();
            r();
          };
        });
        continue;
      }
      busy++;
      try {
        const children = await driver.list(rel ? `${repositoriesRoot}/${rel}` : repositoriesRoot);
        if (rel) await visit(rel, children);
        for (const c of children) if (!c.startsWith('_')) pending.push(rel ? `${rel}/${c}` : c);
      } catch (e) {
        failure ??= { error: e };
      } finally {
        busy--;
        const w = wake;
        wake = undefined;
        w?.();
      }
    }
  };
  await Promise.all(Array.from({ length: WALK_AT_ONCE }, worker));
  if (failure) throw failure.error;
}

/** A repository's directory. */
export function repoPath(name: RepositoryName | string): string {
  return `${repositoriesRoot}/${checkRepositoryName(name)}`;
}

/** The link that makes a blob part of a repository. */
export function layerLinkPath(name: RepositoryName, d: Digest): string {
  const { algorithm, hex } = split(d);
  return `${repoPath(name)}/_layers/${algorithm}/${hex}/link`;
}

/** The link that makes a manifest part of a repository. */
export function revisionLinkPath(name: RepositoryName, d: Digest): string {
  const { algorithm, hex } = split(d);
  return `${repoPath(name)}/_manifests/revisions/${algorithm}/${hex}/link`;
}

/** The directory of all of a repository's manifest revisions, by algorithm. */
export function revisionsPath(name: RepositoryName): string {
  return `${repoPath(name)}/_manifests/revisions`;
}

/** The directory of all of a repository's tags. */
export function tagsPath(name: RepositoryName): string {
  return `${repoPath(name)}/_manifests/tags`;
}

/** A tag's directory. */
export function tagPath(name: RepositoryName, tag: string): string {
  return `${tagsPath(name)}/${checkTag(tag)}`;
}

/** The link a tag currently points at. */
export function tagCurrentPath(name: RepositoryName, tag: string): string {
  return `${tagPath(name, tag)}/current/link`;
}

/** The record that a tag once pointed at a manifest (Distribution keeps the history). */
export function tagIndexPath(name: RepositoryName, tag: string, d: Digest): string {
  const { algorithm, hex } = split(d);
  return `${tagPath(name, tag)}/index/${algorithm}/${hex}/link`;
}

/**
 * Sluice's referrers index: one link per manifest that names a subject. Distribution keeps no such
 * index; it lives under a `_`-prefixed directory, which Distribution's catalog walk skips.
 */
export function referrersPath(name: RepositoryName, subject: Digest): string {
  const { algorithm, hex } = split(subject);
  return `${repoPath(name)}/_referrers/${algorithm}/${hex}`;
}

/** The link of one referrer of a subject. */
export function referrerLinkPath(name: RepositoryName, subject: Digest, referrer: Digest): string {
  const { algorithm, hex } = split(referrer);
  return `${referrersPath(name, subject)}/${algorithm}/${hex}/link`;
}

/** An upload session's directory. */
export function uploadPath(name: RepositoryName, id: string): string {
  if (typeof id !== 'string' || !isUploadId(id)) throw new InvalidNameError('upload id', String(id));
  return `${repoPath(name)}/_uploads/${id}`;
}

/** An upload session's bytes so far. */
export function uploadDataPath(name: RepositoryName, id: string): string {
  return `${uploadPath(name, id)}/data`;
}

/** When an upload session began (Distribution writes this too, and purges old sessions by it). */
export function uploadStartedAtPath(name: RepositoryName, id: string): string {
  return `${uploadPath(name, id)}/startedat`;
}
