import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { digestOf, parseDigest, type Digest } from '../oci/digest.js';
import { parseManifest } from '../oci/manifest.js';
import type { RepositoryName } from '../oci/name.js';
import { isCacheRepository } from '../proxy/names.js';
import type { BlobStore } from '../storage/blobs.js';
import type { StorageDriver } from '../storage/driver.js';
import { blobDataPath } from '../storage/layout.js';
import { RepositoryStore } from '../storage/repository.js';
import type { UploadStore } from '../storage/uploads.js';
import type { Upstream, Upstreams } from '../upstream/upstreams.js';
import type { Claims } from './claim.js';
import type { Problem } from './fsck.js';

/** Manifests bigger than this are not fetched (the registry refuses them anyway). */
const MANIFEST_LIMIT = 4 * 1024 * 1024;

/** What `--repair` did about one problem. */
export interface RepairResult {
  kind: Problem['kind'];
  path: string;
  digest?: Digest;
  repository?: string;
  repaired: boolean;
  detail: string;
}

/** What repairs write with: the storage, its blob and upload stores, claims against a collector, the upstreams. */
export interface RepairDeps {
  driver: StorageDriver;
  blobs: BlobStore;
  uploads: UploadStore;
  claims: Claims;
  upstreams: Upstreams;
}

const REFETCHED = new Set<Problem['kind']>([
  'blob-missing',
  'blob-corrupt',
  'blob-size',
  'manifest-missing',
  'manifest-corrupt',
  'link-missing',
]);

/** The repositories a problem concerns: its own, or those whose tags need the object (`repository:tag`). */
function repositoriesOf(p: Problem): string[] {
  const names = new Set<string>(p.repository ? [p.repository] : []);
  for (const by of p.neededBy ?? []) names.add(by.slice(0, by.lastIndexOf(':')));
  return [...names];
}

/**
 * The upstream's bytes as they pass into the session, hashed on the way and refused past `size`: a lying
 * upstream can neither send more than the manifest gives nor make us read the session back to check it.
 */
async function* checked(body: AsyncIterable<Buffer>, size: number, hash: Hash): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of body) {
    seen += chunk.length;
    if (seen > size) throw new Error(`upstream sent more than the ${size} bytes the manifest gives`);
    hash.update(chunk);
    yield chunk;
  }
}

/**
 * Fetches a blob from upstream into an upload session of `repo`, at most `size` bytes, and puts it in place
 * only when its bytes have the digest: a lying upstream's bytes never become the blob. A corrupt blob stored
 * under the digest is replaced only then.
 */
async function refetchBlob(
  deps: RepairDeps,
  upstream: Upstream,
  remote: string,
  repo: RepositoryName,
  p: Problem,
): Promise<string> {
  const d = p.digest!;
  const size = p.size!;
  const descriptor = { digest: d, size, mediaType: p.mediaType ?? 'application/octet-stream' };
  const body = await upstream.limit(() => upstream.source(remote, d).getBlob(descriptor));
  const id = await deps.uploads.start(repo);
  try {
    const hash = createHash(parseDigest(d).algorithm);
    await deps.uploads.append(repo, id, Readable.from(checked(body, size, hash)), 0, size);
    const actual = `${parseDigest(d).algorithm}:${hash.digest('hex')}`;
    if (actual !== d)
      throw new Error(`upstream ${upstream.name} sent bytes with digest ${actual} for ${d}: refused, nothing written`);
    await deps.claims.claim([d]);
    if (p.kind !== 'blob-missing') await deps.driver.delete(blobDataPath(d));
    await deps.uploads.finish(repo, id, d);
  } catch (e) {
    await deps.uploads.cancel(repo, id).catch(() => undefined);
    throw e;
  }
  return `fetched ${size} bytes from ${upstream.name}/${remote}, digest verified`;
}

/** Fetches a manifest by digest from upstream and stores it (bytes and revision link) when its digest matches. */
async function refetchManifest(
  deps: RepairDeps,
  upstream: Upstream,
  remote: string,
  store: RepositoryStore,
  d: Digest,
): Promise<string> {
  const m = await upstream.limit(() => upstream.source(remote, d).getManifest(d, { maxBytes: MANIFEST_LIMIT }));
  const actual = digestOf(m.bytes, parseDigest(d).algorithm);
  if (actual !== d)
    throw new Error(
      `upstream ${upstream.name} sent a manifest with digest ${actual} for ${d}: refused, nothing written`,
    );
  const subject = parseManifest(m.bytes, m.mediaType).subject?.digest;
  await deps.claims.claim([d]);
  // Written whole under its digest (replacing corrupt bytes of the same size), then linked as a revision.
  await deps.driver.putContent(blobDataPath(d), m.bytes);
  await store.putManifest(m.bytes, subject, parseDigest(d).algorithm);
  return `fetched manifest from ${upstream.name}/${remote}, digest verified`;
}

/** Repairs one problem in the first cache repository it concerns; throws why it could not. */
async function repairOne(deps: RepairDeps, p: Problem): Promise<{ repository: string; detail: string }> {
  if (p.kind.startsWith('referrer-') || p.kind.startsWith('upload-')) {
    throw new Error('nothing to fetch: garbage collection removes orphan referrers, upload purging old sessions');
  }
  if (!REFETCHED.has(p.kind) || !p.digest) {
    throw new Error('links and unreadable manifests are not fetched from upstream: fix or delete the tag');
  }
  const names = repositoriesOf(p);
  const repository = names.find((n) => isCacheRepository(deps.upstreams, n));
  if (!repository)
    throw new Error(`${names.join(', ') || 'no repository'}: not a cache repository, nothing to fetch it from`);
  const upstream = isCacheRepository(deps.upstreams, repository)!;
  const remote = repository.slice(upstream.prefix.length + 1);
  const name = repository as RepositoryName;
  const store = new RepositoryStore(deps.driver, deps.blobs, name);
  if (p.kind === 'manifest-missing' || p.kind === 'manifest-corrupt') {
    return { repository, detail: await refetchManifest(deps, upstream, remote, store, p.digest) };
  }
  if (p.kind === 'link-missing') {
    if ((await deps.blobs.size(p.digest)) === null) throw new Error(`blob ${p.digest} is not stored either`);
    await deps.claims.claim([p.digest]);
    await store.linkBlob(p.digest);
    return { repository, detail: 'linked the stored blob into the repository' };
  }
  if (p.size === undefined) throw new Error('its size is not known');
  const detail = await refetchBlob(deps, upstream, remote, name, p);
  for (const n of names.filter((x) => isCacheRepository(deps.upstreams, x))) {
    await new RepositoryStore(deps.driver, deps.blobs, n as RepositoryName).linkBlob(p.digest);
  }
  return { repository, detail };
}

/**
 * Repairs what fsck found in cache repositories (named under an upstream of `upstreams:`): a lost or corrupt
 * blob or manifest is fetched again from that upstream by digest and stored only when its digest matches.
 * Everything else is reported as not repaired, with why. One problem at a time: a repair is rare and small.
 */
export async function repairProblems(deps: RepairDeps, problems: Problem[]): Promise<RepairResult[]> {
  const results: RepairResult[] = [];
  for (const p of problems) {
    const base = { kind: p.kind, path: p.path, ...(p.digest ? { digest: p.digest } : {}) };
    try {
      const { repository, detail } = await repairOne(deps, p);
      results.push({ ...base, repository, repaired: true, detail });
    } catch (e) {
      results.push({
        ...base,
        ...(p.repository ? { repository: p.repository } : {}),
        repaired: false,
        detail: (e as Error).message,
      });
    }
  }
  return results;
}
