import { createHash } from 'node:crypto';
import { digestOf, isDigest, parseDigest, type Digest } from '../oci/digest.js';
import { parseManifest, referencedBlobs, type Manifest } from '../oci/manifest.js';
import { isRepositoryName, isTag, type RepositoryName } from '../oci/name.js';
import { limiter } from '../async/limit.js';
import type { StorageDriver } from '../storage/driver.js';
import {
  blobDataPath,
  repoPath,
  revisionsPath,
  tagCurrentPath,
  tagsPath,
  walkRepositoryDirs,
} from '../storage/layout.js';
import type { Problem, ProblemKind } from './fsck-problems.js';
import { checkReferrers, checkUploads } from './fsck-leftovers.js';

/** Manifests bigger than this are not read (the registry refuses them anyway). */
const MANIFEST_LIMIT = 4 * 1024 * 1024;
/** A link holds one digest: anything longer is not one. */
const LINK_LIMIT = 1024;
const AT_ONCE = 8;

export type { Problem, ProblemKind };

/** How thoroughly blobs are checked. */
export interface FsckOptions {
  /** full: hash every blob; sample: check every size, hash `sample` blobs chosen at random. */
  mode: 'full' | 'sample';
  sample: number;
  random?: () => number;
  /** Upload sessions older than this are reported as stale (`storage.maintenance.uploadpurging.age`; default 168h). */
  uploadAgeMs?: number;
  now?: () => number;
}

/** Distribution's default upload purging age. */
const UPLOAD_AGE_MS = 168 * 3600_000;

/** What fsck looked at and found. */
export interface FsckReport {
  repositories: number;
  tags: number;
  manifests: number;
  blobs: number;
  hashed: number;
  problems: Problem[];
}

/** A blob a tagged manifest names, with who needs it. */
interface Needed {
  size: number;
  mediaType: string;
  neededBy: Set<string>;
  repositories: Set<string>;
}

/** Reads a link: the digest, or why it is not one. */
async function readLinkText(
  driver: StorageDriver,
  path: string,
): Promise<{ digest: Digest } | { invalid: string } | null> {
  const info = await driver.stat(path);
  if (!info || info.isDirectory) return null;
  if (info.size > LINK_LIMIT) return { invalid: `${info.size} bytes, not a digest` };
  const text = (await driver.getContent(path))?.toString('utf8').trim() ?? '';
  return isDigest(text) ? { digest: text } : { invalid: `holds ${JSON.stringify(text.slice(0, 80))}, not a digest` };
}

/** Hashes a stored blob as it streams; the digest it has. */
async function hashBlob(driver: StorageDriver, d: Digest): Promise<Digest> {
  const { algorithm } = parseDigest(d);
  const h = createHash(algorithm);
  for await (const chunk of await driver.reader(blobDataPath(d))) h.update(chunk as Buffer);
  return `${algorithm}:${h.digest('hex')}` as Digest;
}

/** Checks one repository's links and its tagged manifests; records the blobs they need in `needed`. */
async function checkRepository(
  driver: StorageDriver,
  name: RepositoryName,
  needed: Map<Digest, Needed>,
  report: FsckReport,
  uploadsBefore: number,
): Promise<void> {
  const problem = (p: Omit<Problem, 'repository'>) => report.problems.push({ ...p, repository: name });
  const linked = async (dir: string, what: string): Promise<Set<Digest>> => {
    const out = new Set<Digest>();
    for (const alg of await driver.list(dir)) {
      for (const hex of await driver.list(`${dir}/${alg}`)) {
        const d = `${alg}:${hex}`;
        const path = `${dir}/${alg}/${hex}/link`;
        if (!isDigest(d)) {
          problem({
            kind: 'link-invalid',
            path: `${dir}/${alg}/${hex}`,
            detail: `${what} folder is not named by a digest`,
          });
          continue;
        }
        const link = await readLinkText(driver, path);
        if (!link) problem({ kind: 'link-invalid', path, digest: d, detail: `${what} of ${d} has no link file` });
        else if ('invalid' in link)
          problem({ kind: 'link-invalid', path, digest: d, detail: `${what} link ${link.invalid}` });
        else if (link.digest !== d)
          problem({ kind: 'link-invalid', path, digest: d, detail: `${what} link of ${d} names ${link.digest}` });
        else if (!(await driver.stat(blobDataPath(d)))) {
          problem({ kind: 'link-dangling', path, digest: d, detail: `${what} link to ${d}, whose blob is not stored` });
        }
        // Present, if broken: what is wrong with it is reported once, here or where a tag needs it.
        out.add(d);
      }
    }
    return out;
  };
  const revisions = await linked(revisionsPath(name), 'revision');
  const layers = await linked(`${repoPath(name)}/_layers`, 'layer');
  const tags = new Map<string, Digest>();
  for (const tag of await driver.list(tagsPath(name))) {
    if (!isTag(tag)) {
      problem({
        kind: 'link-invalid',
        path: `${tagsPath(name)}/${tag}`,
        detail: 'tag folder is not named by a valid tag',
      });
      continue;
    }
    report.tags++;
    const path = tagCurrentPath(name, tag);
    const link = await readLinkText(driver, path);
    if (!link) problem({ kind: 'link-invalid', path, detail: `tag ${tag} has no current link` });
    else if ('invalid' in link) problem({ kind: 'link-invalid', path, detail: `tag ${tag}: link ${link.invalid}` });
    else if (!revisions.has(link.digest)) {
      const detail = `tag ${tag} names ${link.digest}, which is not a stored revision of ${name}`;
      problem({ kind: 'manifest-missing', path, digest: link.digest, neededBy: [`${name}:${tag}`], detail });
    } else tags.set(tag, link.digest);
  }
  // Every manifest a tag reaches (index children this repository holds), read and hashed: manifests are small.
  const seen = new Set<Digest>();
  const unlinked = new Set<Digest>();
  const walk = async (d: Digest, by: string): Promise<void> => {
    if (seen.has(d)) return;
    seen.add(d);
    report.manifests++;
    const path = blobDataPath(d);
    const info = await driver.stat(path);
    const where = { path, digest: d, neededBy: [by] };
    if (!info || info.isDirectory)
      return void problem({ ...where, kind: 'manifest-missing', detail: `manifest ${d} is not stored` });
    if (info.size > MANIFEST_LIMIT) {
      return void problem({ ...where, kind: 'manifest-unreadable', detail: `manifest ${d} is ${info.size} bytes` });
    }
    const bytes = (await driver.getContent(path)) ?? Buffer.alloc(0);
    const actual = digestOf(bytes, parseDigest(d).algorithm);
    if (actual !== d) {
      return void problem({
        ...where,
        kind: 'manifest-corrupt',
        detail: `manifest ${d}: its bytes have digest ${actual}`,
      });
    }
    let m: Manifest;
    try {
      m = parseManifest(bytes);
    } catch (e) {
      return void problem({ ...where, kind: 'manifest-unreadable', detail: `manifest ${d}: ${(e as Error).message}` });
    }
    if (m.kind === 'index') {
      for (const c of m.manifests) if (revisions.has(c.digest)) await walk(c.digest, by);
      return;
    }
    for (const b of referencedBlobs(m)) {
      const n = needed.get(b.digest) ?? {
        size: b.size,
        mediaType: b.mediaType,
        neededBy: new Set(),
        repositories: new Set(),
      };
      n.neededBy.add(by);
      n.repositories.add(name);
      needed.set(b.digest, n);
      if (!layers.has(b.digest) && !unlinked.has(b.digest)) {
        unlinked.add(b.digest);
        const { algorithm, hex } = parseDigest(b.digest);
        const detail = `blob ${b.digest} is not linked into ${name}: the repository does not serve it`;
        const path = `${repoPath(name)}/_layers/${algorithm}/${hex}/link`;
        problem({ kind: 'link-missing', path, digest: b.digest, neededBy: [by], detail });
      }
    }
  };
  for (const [tag, d] of tags) await walk(d, `${name}:${tag}`);
  const leftovers = { revisions, readLink: (p: string) => readLinkText(driver, p), uploadsBefore, problem };
  await checkReferrers(driver, name, leftovers);
  await checkUploads(driver, name, leftovers);
}

/** Picks `n` of `items` at random (all of them when n is at least their number). */
function sampleOf<T>(items: T[], n: number, random: () => number): Set<T> {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return new Set(copy.slice(0, n));
}

/**
 * Checks the storage: every link (tags' current links, revisions, layer links) is valid and points at a stored
 * blob, every tagged manifest (and the index children the repository holds) is stored whole, and every blob
 * those manifests name exists with its size, and its digest where it is hashed (all with `full`, a random
 * `sample` otherwise). Also the referrers index (`fsck-leftovers.ts`: listings of missing manifests, referrers
 * whose subject is gone) and upload sessions (past their age, broken). Reads only; names read from storage are
 * validated before they become paths.
 */
export async function fsck(driver: StorageDriver, options: FsckOptions): Promise<FsckReport> {
  const report: FsckReport = { repositories: 0, tags: 0, manifests: 0, blobs: 0, hashed: 0, problems: [] };
  const needed = new Map<Digest, Needed>();
  const names: RepositoryName[] = [];
  const uploadsBefore = (options.now ?? Date.now)() - (options.uploadAgeMs ?? UPLOAD_AGE_MS);
  await walkRepositoryDirs(driver, (rel, children) => {
    const holds = children.includes('_manifests') || children.includes('_layers') || children.includes('_uploads');
    if (holds && isRepositoryName(rel)) names.push(rel);
  });
  for (const name of names.sort()) {
    report.repositories++;
    await checkRepository(driver, name, needed, report, uploadsBefore);
  }
  const digests = [...needed.keys()];
  const hashed =
    options.mode === 'full' ? new Set(digests) : sampleOf(digests, options.sample, options.random ?? Math.random);
  const limit = limiter(AT_ONCE);
  await Promise.all(
    digests.map((d) =>
      limit(async () => {
        const n = needed.get(d)!;
        report.blobs++;
        const path = blobDataPath(d);
        const about = { path, digest: d, neededBy: [...n.neededBy].sort(), size: n.size, mediaType: n.mediaType };
        const info = await driver.stat(path);
        const problem = (kind: ProblemKind, detail: string) => void report.problems.push({ ...about, kind, detail });
        if (!info || info.isDirectory) return problem('blob-missing', `blob ${d} is not stored`);
        if (info.size !== n.size)
          return problem('blob-size', `blob ${d} has ${info.size} bytes, its manifest says ${n.size}`);
        if (!hashed.has(d)) return;
        report.hashed++;
        const actual = await hashBlob(driver, d);
        if (actual !== d) problem('blob-corrupt', `blob ${d}: its bytes have digest ${actual}`);
      }),
    ),
  );
  // A link to a lost blob a tag needs is said once, as the lost blob or manifest, which a repair restores.
  const lost = new Set(
    report.problems.filter((p) => p.kind === 'blob-missing' || p.kind === 'manifest-missing').map((p) => p.digest),
  );
  report.problems = report.problems.filter((p) => p.kind !== 'link-dangling' || !lost.has(p.digest));
  return report;
}
