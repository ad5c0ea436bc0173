import type { FastifyReply, FastifyRequest } from 'fastify';
import { digestOf, isDigest, parseDigest, type Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { ManifestError, parseManifest, referencedBlobs, type Manifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';
import type { Descriptor } from '../oci/descriptor.js';
import { isTag, type RepositoryName } from '../oci/name.js';
import { formatPlatform, platformMatches } from '../oci/platform.js';
import type { RepositoryStore } from '../storage/repository.js';
import { requireWritable } from './blob-routes.js';
import { readSmallBody, refuseCodings } from './body.js';
import { etagOf, ifNoneMatchHits } from './conditional.js';
import { limiter } from '../async/limit.js';
import type { IndexPolicy, RegistryContext } from './context.js';
import { checkPull } from './trust-pull.js';
import { claimForPush } from './gc-claim.js';
import { manifestClaims } from '../gc/claim.js';
import { emitForRequest, eventURL, manifestReferences, type EventDraft } from './events.js';

/** The media type to answer with: the manifest's own, else what its shape implies (umoci omits it). */
function mediaTypeOf(bytes: Buffer): string {
  try {
    return parseManifest(bytes).mediaType;
  } catch {
    return MediaType.OciManifest;
  }
}

function acceptList(req: FastifyRequest): string[] {
  const raw = req.headers.accept;
  const values = Array.isArray(raw) ? raw : raw ? [raw] : [];
  return values
    .flatMap((v) => v.split(','))
    .map((v) => v.split(';')[0]!.trim())
    .filter(Boolean);
}

/**
 * Explains a missing manifest when an index in this repository lists it: the plain error of a
 * partially mirrored index ("linux/s390x of index sha256:… is not stored in this registry").
 */
async function missingChildMessage(
  ctx: RegistryContext,
  repo: RepositoryStore,
  digest: Digest,
): Promise<string | null> {
  await ctx.scanner.refresh(repo);
  const entry = await ctx.scanner.indexListing(repo, digest);
  if (!entry) return null;
  const what = entry.platform ? formatPlatform(entry.platform) : `manifest ${digest}`;
  return `${what} of index ${entry.index} is not stored in this registry (the index was mirrored without it)`;
}

/** A push or pull of a manifest, as Distribution describes it (references are kept; the endpoint decides). */
function manifestEvent(
  req: FastifyRequest,
  action: 'push' | 'pull',
  name: RepositoryName,
  digest: Digest,
  bytes: Buffer,
  mediaType: string,
  tag: string | undefined,
  m?: Manifest,
): EventDraft {
  let references: ReturnType<typeof manifestReferences> | undefined;
  try {
    references = manifestReferences(m ?? parseManifest(bytes));
  } catch {
    references = undefined;
  }
  const target = {
    mediaType,
    size: bytes.length,
    digest,
    length: bytes.length,
    repository: name,
    url: eventURL(req, name, 'manifests', digest),
  };
  return {
    type: action,
    action,
    target: { ...target, ...(tag ? { tag } : {}), ...(references ? { references } : {}) },
  };
}

/** GET and HEAD of a manifest by tag or digest. */
export async function getManifest(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  name: RepositoryName,
  reference: string,
): Promise<void> {
  await ctx.authorize(req, { repository: name, actions: ['pull'], reference });
  const byDigest = isDigest(reference);
  if (!byDigest && !isTag(reference)) {
    if (reference.includes(':')) throw new OciError('DIGEST_INVALID', `invalid digest "${reference.slice(0, 200)}"`);
    throw new OciError('MANIFEST_UNKNOWN', `invalid tag "${reference.slice(0, 200)}"`);
  }
  const repo = ctx.repo(name);
  const stored = await repo.getManifest(reference);
  if (!stored) {
    // HEAD has no body to carry the explanation, and clients HEAD often to test presence: skip the lookup.
    if (byDigest && req.method !== 'HEAD') {
      const why = await missingChildMessage(ctx, repo, reference);
      if (why) throw new OciError('MANIFEST_UNKNOWN', why, { digest: reference });
    }
    if (!byDigest && !(await repo.exists()))
      throw new OciError('NAME_UNKNOWN', `repository ${name} is not known`, { name });
    throw new OciError(
      'MANIFEST_UNKNOWN',
      `manifest ${reference} is not known to repository ${name}`,
      byDigest ? { digest: reference } : { tag: reference },
    );
  }
  // Signature requirements (`trust:`) apply to what is served, whoever put it here (push, cache, mirror).
  await checkPull(ctx, req, { name, reference, digest: stored.digest, bytes: stored.bytes });
  const mediaType = mediaTypeOf(stored.bytes);
  const accepts = acceptList(req);
  const accepted = accepts.some(
    (a) => a === mediaType || a === '*/*' || (a.endsWith('/*') && mediaType.startsWith(a.slice(0, -1))),
  );
  if (!byDigest && accepts.length > 0 && !accepted) {
    // Distribution's answer too: never convert a manifest, so say it cannot be served as asked.
    throw new OciError(
      'MANIFEST_UNKNOWN',
      `manifest ${reference} is ${mediaType}, which the Accept header does not include`,
      { tag: reference, mediaType },
    );
  }
  reply.header('docker-content-digest', stored.digest).header('etag', etagOf(stored.digest));
  // A pull: by tag (GET, or HEAD as containerd resolves), or a GET by digest; a HEAD by digest tests presence.
  // Recording only updates memory; the cache's fills and mirror jobs write storage without passing here.
  if (!byDigest || req.method !== 'HEAD') ctx.pulls?.record(name, byDigest ? undefined : reference, stored.digest);
  // Distribution sends a pull for GET and HEAD alike (a 304 included: the manifest was served from its store).
  if (ctx.events?.journalsPulls)
    await emitForRequest(ctx, req, [
      manifestEvent(req, 'pull', name, stored.digest, stored.bytes, mediaType, byDigest ? undefined : reference),
    ]);
  if (ifNoneMatchHits(req, stored.digest)) {
    reply.code(304).send();
    return;
  }
  reply.code(200).header('content-type', mediaType).header('content-length', String(stored.bytes.length));
  if (req.method === 'HEAD') {
    reply.send();
    return;
  }
  ctx.metrics.bytesOut.inc({ route: 'manifest' }, stored.bytes.length);
  reply.send(stored.bytes);
}

/**
 * The most distinct digests one manifest may reference. Distribution sets no limit; the largest real
 * images have a few hundred layers and the largest indexes a few hundred platforms, so 10,000 leaves
 * room for any of them while bounding the work one PUT can cause.
 */
export const MAX_REFERENCES = 10_000;
/** Reference checks in flight at once for one PUT: each costs a file or two, and the process has a limit. */
const CHECKS_AT_ONCE = 16;

/** The first descriptor for each distinct digest, in manifest order. */
function distinctByDigest<T extends { digest: Digest }>(items: T[]): T[] {
  const seen = new Map<Digest, T>();
  for (const d of items) if (!seen.has(d.digest)) seen.set(d.digest, d);
  return [...seen.values()];
}

/** Checks that everything a manifest points at is in the repository, as the index policy requires. */
async function checkReferences(repo: RepositoryStore, m: Manifest, policy: IndexPolicy): Promise<void> {
  const listed = m.kind === 'image' ? referencedBlobs(m) : m.manifests;
  const distinct = new Set(listed.map((d) => d.digest)).size;
  if (distinct > MAX_REFERENCES) {
    throw new OciError(
      'MANIFEST_INVALID',
      `manifest references ${distinct} distinct digests; this registry accepts at most ${MAX_REFERENCES}`,
    );
  }
  let required: Descriptor[];
  if (m.kind === 'image' || policy.mode === 'all') required = listed;
  else if (policy.mode === 'none') return;
  else required = listed.filter((d) => d.platform && policy.platforms.some((w) => platformMatches(w, d.platform!)));
  const missing: { digest: string; what: string }[] = [];
  const limit = limiter(CHECKS_AT_ONCE);
  // A layer listed 25,000 times is one check, not 25,000 open files at once.
  await Promise.all(
    distinctByDigest(required).map((d) =>
      limit(async () => {
        if (m.kind === 'image') {
          if ((await repo.blobSize(d.digest)) === null)
            missing.push({ digest: d.digest, what: d.digest === m.config.digest ? 'config' : 'layer' });
        } else if (!(await repo.hasManifest(d.digest))) {
          missing.push({
            digest: d.digest,
            what: d.platform ? `manifest for ${formatPlatform(d.platform)}` : 'manifest',
          });
        }
      }),
    ),
  );
  if (missing.length > 0) {
    const first = missing[0]!;
    const hint =
      m.kind === 'index' && policy.mode === 'all'
        ? ' (this registry requires every platform of an index; see validation.manifests.indexes)'
        : '';
    throw new OciError(
      'MANIFEST_BLOB_UNKNOWN',
      `${first.what} ${first.digest} is not in repository ${repo.name}${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}${hint}`,
      missing.map((x) => ({ digest: x.digest })),
    );
  }
}

/** PUT of a manifest: validated, stored byte for byte, tagged. */
export async function putManifest(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  name: RepositoryName,
  reference: string,
): Promise<void> {
  await ctx.authorize(req, { repository: name, actions: ['push'], reference });
  requireWritable(ctx);
  const byDigest = isDigest(reference);
  if (!byDigest && !isTag(reference)) {
    req.raw.resume();
    throw new OciError(
      reference.includes(':') ? 'DIGEST_INVALID' : 'TAG_INVALID',
      `invalid tag or digest "${reference.slice(0, 200)}"`,
    );
  }
  refuseCodings(req, 'MANIFEST_INVALID');
  const declared = req.headers['content-length'] ? Number(req.headers['content-length']) : undefined;
  const bytes = await readSmallBody(req.raw, ctx.manifestLimit, declared, 'MANIFEST_INVALID', 'manifest');
  ctx.metrics.bytesIn.inc({ route: 'manifest' }, bytes.length);
  const algorithm = byDigest ? parseDigest(reference).algorithm : 'sha256';
  const digest = digestOf(bytes, algorithm);
  if (byDigest && digest !== reference) {
    throw new OciError('DIGEST_INVALID', `manifest has digest ${digest}, not ${reference}`, { digest: reference });
  }
  let m: Manifest;
  try {
    m = parseManifest(bytes, req.headers['content-type']);
  } catch (e) {
    if (e instanceof ManifestError) throw new OciError('MANIFEST_INVALID', e.message);
    throw e;
  }
  const repo = ctx.repo(name);
  // Claimed before they are checked, so that garbage collection cannot delete them between check and store.
  await claimForPush(ctx, manifestClaims(digest, m));
  await checkReferences(repo, m, ctx.indexPolicy);
  // A push by digest may name tags too (`?tag=a&tag=b`, distribution-spec 1.1.1), each authorized as a push.
  const queryTags = byDigest ? [(req.query as Record<string, string | string[] | undefined>).tag ?? []].flat() : [];
  for (const t of queryTags) {
    if (!isTag(t)) throw new OciError('TAG_INVALID', `invalid tag "${t.slice(0, 200)}"`);
    await ctx.authorize(req, { repository: name, actions: ['push'], reference: t });
  }
  const tags = byDigest ? queryTags : [reference];
  // Reading a tag, deciding whether moving it is an overwrite and moving it are one step per tag: otherwise
  // concurrent pushes to a new immutable tag all find it absent and all "create" it.
  const moved = new Map<string, Digest>();
  await repo.withTagLock(tags, async () => {
    const fresh = new Set<string>();
    for (const t of tags) {
      const current = await repo.resolveTag(t);
      if (current && current !== digest)
        await ctx.authorize(req, { repository: name, actions: ['overwrite'], reference: t });
      if (current && current !== digest) moved.set(t, current);
      if (!current) fresh.add(t);
    }
    await repo.putManifest(bytes, m.subject?.digest, algorithm);
    // The lock holds in this process only: where storage can, a new tag is created only if still absent, so
    // a registry process on the same bucket that created it meanwhile makes this push an overwrite.
    const exclusive = fresh.size > 0 && ctx.driver.exclusiveCreate ? await ctx.driver.exclusiveCreate() : false;
    // All of a push's tags or none: the new tags are created first, and if another node took one of them
    // meanwhile and this client may not overwrite it, the tags this push created are taken back.
    const created: string[] = [];
    try {
      if (exclusive) {
        for (const t of fresh) {
          if (await repo.createTag(t, digest)) created.push(t);
          else if ((await repo.resolveTag(t)) !== digest)
            await ctx.authorize(req, { repository: name, actions: ['overwrite'], reference: t });
        }
      }
      for (const t of tags) if (!created.includes(t)) await repo.tag(t, digest);
      // A DELETE of this digest on another node may have removed the revision under the new tags.
      await repo.keepRevision(digest, tags, m.subject?.digest);
    } catch (e) {
      for (const t of created)
        if ((await repo.resolveTag(t).catch(() => undefined)) === digest) await repo.untag(t).catch(() => undefined);
      throw e;
    }
  });
  ctx.catalog.invalidate();
  if (ctx.events) {
    const drafts = (tags.length ? tags : [undefined]).map((t) =>
      manifestEvent(req, 'push', name, digest, bytes, m.mediaType, t, m),
    );
    for (const [t, previous] of moved) {
      drafts.push({
        type: 'tag.moved',
        target: { repository: name, tag: t, digest, mediaType: m.mediaType },
        data: { previous },
      });
    }
    await emitForRequest(ctx, req, drafts);
  }
  reply
    .code(201)
    .header('location', `/v2/${name}/manifests/${digest}`)
    .header('docker-content-digest', digest)
    .header('content-length', '0');
  if (queryTags.length > 0) reply.header('oci-tag', queryTags);
  if (m.subject) reply.header('oci-subject', m.subject.digest);
  reply.send();
}

/** DELETE of a manifest (by digest, with its tags) or of a tag alone. */
export async function deleteManifest(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  name: RepositoryName,
  reference: string,
): Promise<void> {
  await ctx.authorize(req, { repository: name, actions: ['delete'], reference });
  requireWritable(ctx);
  if (!ctx.deleteEnabled)
    throw new OciError('UNSUPPORTED', 'deletion is disabled on this registry (storage.delete.enabled)');
  const repo = ctx.repo(name);
  if (isDigest(reference)) {
    const stored = await repo.getManifest(reference);
    let subject: Digest | undefined;
    if (stored) {
      try {
        subject = parseManifest(stored.bytes).subject?.digest;
      } catch {
        subject = undefined;
      }
    }
    // Distribution sends the manifest's delete, then one for each tag that named it.
    const tags = ctx.events && stored ? await repo.tagsNaming(reference) : [];
    if (!(await repo.deleteManifest(reference, subject)))
      throw new OciError('MANIFEST_UNKNOWN', `manifest ${reference} is not known to repository ${name}`, {
        digest: reference,
      });
    const drafts: EventDraft[] = [
      { type: 'delete', action: 'delete', target: { digest: reference, repository: name } },
    ];
    for (const tag of tags) drafts.push({ type: 'delete', action: 'delete', target: { repository: name, tag } });
    await emitForRequest(ctx, req, drafts);
  } else {
    if (!isTag(reference)) throw new OciError('TAG_INVALID', `invalid tag "${reference.slice(0, 200)}"`);
    if (!(await repo.untag(reference)))
      throw new OciError('MANIFEST_UNKNOWN', `tag ${reference} is not known to repository ${name}`, { tag: reference });
    await emitForRequest(ctx, req, [
      { type: 'delete', action: 'delete', target: { repository: name, tag: reference } },
    ]);
  }
  reply.code(202).header('content-length', '0').send();
}
