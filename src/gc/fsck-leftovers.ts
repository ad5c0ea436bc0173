// fsck's checks of what a repository holds beside its tags: Sluice's referrers index and upload sessions.
import { isDigest, type Digest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/name.js';
import type { StorageDriver } from '../storage/driver.js';
import { blobDataPath, isUploadId, repoPath, uploadDataPath, uploadStartedAtPath } from '../storage/layout.js';
import type { Problem } from './fsck-problems.js';

/** A start time is an ISO date: anything longer is not one. */
const STARTED_AT_LIMIT = 256;

/** What the leftover checks need besides the repository. */
export interface LeftoverContext {
  /** The repository's stored revisions (their links are checked elsewhere). */
  revisions: Set<Digest>;
  /** Reads a link file: the digest, why it is not one, or null when absent (`fsck.ts`). */
  readLink: (path: string) => Promise<{ digest: Digest } | { invalid: string } | null>;
  /** Sessions older than this (epoch ms) are past their age (`storage.maintenance.uploadpurging.age`). */
  uploadsBefore: number;
  problem: (p: Omit<Problem, 'repository'>) => void;
}

/** Whether a revision is stored whole enough to be served: linked here and its bytes present. */
async function served(driver: StorageDriver, ctx: LeftoverContext, d: Digest): Promise<boolean> {
  return ctx.revisions.has(d) && (await driver.stat(blobDataPath(d))) !== null;
}

/**
 * Sluice's referrers index (`_referrers/<subject>/<alg>/<hex>/link`): a link naming a manifest the repository
 * does not hold is a listing the referrers API silently drops (`referrer-dangling`); a referrer whose subject is
 * gone is one the collector will delete (`referrer-orphan`).
 */
export async function checkReferrers(driver: StorageDriver, name: RepositoryName, ctx: LeftoverContext): Promise<void> {
  const root = `${repoPath(name)}/_referrers`;
  for (const salg of await driver.list(root)) {
    for (const shex of await driver.list(`${root}/${salg}`)) {
      const subject = `${salg}:${shex}`;
      const dir = `${root}/${salg}/${shex}`;
      if (!isDigest(subject)) {
        ctx.problem({ kind: 'link-invalid', path: dir, detail: 'referrers folder is not named by a digest' });
        continue;
      }
      const subjectServed = await served(driver, ctx, subject);
      for (const alg of await driver.list(dir)) {
        for (const hex of await driver.list(`${dir}/${alg}`)) {
          const d = `${alg}:${hex}`;
          const path = `${dir}/${alg}/${hex}/link`;
          if (!isDigest(d)) {
            const detail = `referrer folder of ${subject} is not named by a digest`;
            ctx.problem({ kind: 'link-invalid', path: `${dir}/${alg}/${hex}`, detail });
            continue;
          }
          const link = await ctx.readLink(path);
          if (!link || 'invalid' in link || link.digest !== d) {
            const why = !link
              ? 'has no link file'
              : 'invalid' in link
                ? `link ${link.invalid}`
                : `names ${link.digest}`;
            ctx.problem({ kind: 'link-invalid', path, digest: d, detail: `referrer ${d} of ${subject}: ${why}` });
          } else if (!(await served(driver, ctx, d))) {
            const detail = `the referrers of ${subject} list ${d}, a manifest ${name} does not hold`;
            ctx.problem({ kind: 'referrer-dangling', path, digest: d, detail });
          } else if (!subjectServed) {
            const detail = `referrer ${d} names subject ${subject}, which ${name} does not hold (gc deletes it)`;
            ctx.problem({ kind: 'referrer-orphan', path, digest: d, detail });
          }
        }
      }
    }
  }
}

/**
 * Upload sessions (`_uploads/<id>`): one past `storage.maintenance.uploadpurging.age` was abandoned and waits for
 * the purge (`upload-stale`); one without a readable start time or without its data file, or a folder no
 * registry names so, is broken (`upload-broken`: the purge leaves a foreign folder alone, so it stays forever).
 */
export async function checkUploads(driver: StorageDriver, name: RepositoryName, ctx: LeftoverContext): Promise<void> {
  const root = `${repoPath(name)}/_uploads`;
  for (const id of await driver.list(root)) {
    const path = `${root}/${id}`;
    if (!isUploadId(id)) {
      const detail = `upload folder "${id.slice(0, 80)}" is not named by a session id`;
      ctx.problem({ kind: 'upload-broken', path, detail });
      continue;
    }
    const startedAt = uploadStartedAtPath(name, id);
    const info = await driver.stat(startedAt);
    const text = info && !info.isDirectory && info.size <= STARTED_AT_LIMIT ? await driver.getContent(startedAt) : null;
    const started = text ? Date.parse(text.toString('utf8').trim()) : NaN;
    if (Number.isNaN(started)) {
      ctx.problem({ kind: 'upload-broken', path, detail: `upload session ${id} has no readable start time` });
    } else if (!(await driver.stat(uploadDataPath(name, id)))) {
      ctx.problem({ kind: 'upload-broken', path, detail: `upload session ${id} has no data file` });
    } else if (started < ctx.uploadsBefore) {
      const detail = `upload session ${id} began ${new Date(started).toISOString()}, past the upload purging age`;
      ctx.problem({ kind: 'upload-stale', path, detail });
    }
  }
}
