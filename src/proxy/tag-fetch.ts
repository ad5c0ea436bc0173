// Keeps a cached tag fresh: the flow decision, the ttl check, HEAD then GET upstream, stale answers on outages.
import { isDigest, type Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { decideFlow, flowLabel, type CompiledFlow, type FlowDecision } from '../policy/flows.js';
import { ANONYMOUS } from '../policy/types.js';
import type { RepositoryStore } from '../storage/repository.js';
import { parseDuration } from '../config/duration.js';
import { header, RegistryError } from '../transport/registry-client.js';
import { isEvidence } from '../sign/evidence.js';
import { fetchAttachments } from './attachments.js';
import type { Requester } from './cache-report.js';
import { refusal, upstreamRequest, type CacheState } from './cache-state.js';
import { ACCEPT, fetchManifest, judge, storeManifest, type Fetched } from './manifest-fetch.js';
import type { CacheTarget } from './names.js';
import { isOutage, ociErrorForOutage } from './upstream-failure.js';

/** What `fetchTag` fetches: the tag, the reference to GET it by, what is cached of it, and for whom. */
interface TagFetch {
  tag: string;
  /** The tag, or the digest a HEAD gave for it. */
  reference: string;
  local: Digest | null;
  flow: CompiledFlow | undefined;
  who: Requester;
}

/** The subject of a cosign attachment tag (`sha256-<hex>.sig`, `.att`, `.sbom`, or OCI 1.1's `sha256-<hex>`). */
export function attachmentSubject(tag: string): Digest | undefined {
  const m = /^(sha256)-([0-9a-f]{64})(?:\.(?:sig|att|sbom))?$/.exec(tag);
  return m ? (`${m[1]}:${m[2]}` as Digest) : undefined;
}

/**
 * Makes sure the local repository holds the manifest a tag names, fresh within its ttl, fetching it from
 * upstream when the flows allow; one fetch per tag however many clients ask meanwhile.
 */
export async function ensureTag(s: CacheState, t: CacheTarget, tag: string, who: Requester): Promise<void> {
  const repo = s.deps.repo(t.local);
  const decision = await decideTag(s, t, tag, repo);
  if (!decision.allowed) throw await refusal(s, t, tag, decision.reason, decision.flow, who);
  const key = `${t.local}:${tag}`;
  const local = await repo.resolveTag(tag);
  const last = s.checked.get(key);
  if (local && last !== undefined && Date.now() - last < ttlOf(t, decision.flow)) {
    s.counters.requests.inc({ kind: 'manifest', result: 'hit' });
    return;
  }
  // A read-only node serves what the bucket or folder holds and never writes what it would fetch.
  if (s.deps.readOnly) {
    if (local) return;
    throw new OciError(
      'MANIFEST_UNKNOWN',
      `${t.image}:${tag} is not cached, and this registry is read-only so it does not fetch`,
      { tag },
    );
  }
  if (!local && (s.missing.get(key) ?? 0) > Date.now()) {
    throw new OciError(
      'MANIFEST_UNKNOWN',
      `${t.image}:${tag} is not known upstream at ${t.upstream.name} (remembered for a moment)`,
      { tag },
    );
  }
  let run = s.inflight.get(key);
  if (!run) {
    run = refreshTag(s, t, tag, local, decision.flow, who).finally(() => s.inflight.delete(key));
    s.inflight.set(key, run);
  }
  await run;
}

function ttlOf(t: CacheTarget, flow: CompiledFlow | undefined): number {
  return flow?.spec.ttl ? parseDuration(flow.spec.ttl) : t.upstream.ttlMs;
}

/**
 * The flow decision for a tag. A cosign attachment tag of a manifest the cache holds is judged by the
 * image name alone: a tag filter speaks of image versions, and the signature belongs to one that passed.
 */
async function decideTag(s: CacheState, t: CacheTarget, tag: string, repo: RepositoryStore): Promise<FlowDecision> {
  const subject = attachmentSubject(tag);
  if (subject && (await repo.hasManifest(subject))) {
    const rule = s.flows.flows.find((f) => f.images.some((p) => p.matches({ repository: t.image }, ANONYMOUS)));
    if (rule && !rule.spec.deny)
      return { allowed: true, flow: rule, reason: `attachment of cached ${t.image}@${subject}` };
  }
  return decideFlow(s.flows, { repository: t.image, tag });
}

async function refreshTag(
  s: CacheState,
  t: CacheTarget,
  tag: string,
  local: Digest | null,
  flow: CompiledFlow | undefined,
  who: Requester,
): Promise<void> {
  const key = `${t.local}:${tag}`;
  let upstreamDigest: string | undefined;
  // Nothing cached yet: the GET that must come anyway answers what a HEAD would, one round trip sooner.
  if (!local) return fetchTag(s, t, { tag, reference: tag, local: null, flow, who });
  try {
    const res = await upstreamRequest(t, 'HEAD', `manifests/${encodeURIComponent(tag)}`, { accept: ACCEPT });
    await res.body.dump();
    if (res.statusCode === 404) return serveStale(s, t, tag, 'upstream no longer has the tag');
    if (res.statusCode !== 200)
      throw new RegistryError(`HEAD ${t.image}:${tag}: HTTP ${res.statusCode}`, res.statusCode);
    upstreamDigest = header(res, 'docker-content-digest');
  } catch (e) {
    if (e instanceof OciError) throw e;
    if (isOutage(e)) return serveStale(s, t, tag, (e as Error).message);
    s.counters.requests.inc({ kind: 'manifest', result: 'error' });
    throw ociErrorForOutage(t, e);
  }
  if (upstreamDigest === local) {
    s.checked.set(key, Date.now());
    s.counters.requests.inc({ kind: 'manifest', result: 'hit' });
    return;
  }
  // Moved upstream: fetch by digest when HEAD named one, so a tag moving meanwhile cannot mix bytes.
  const reference = upstreamDigest && isDigest(upstreamDigest) ? upstreamDigest : tag;
  return fetchTag(s, t, { tag, reference, local, flow, who });
}

/** Fetches the manifest a tag names upstream (by `reference`: the tag, or the digest a HEAD gave) and tags it here. */
async function fetchTag(s: CacheState, t: CacheTarget, { tag, reference, local, flow, who }: TagFetch): Promise<void> {
  const key = `${t.local}:${tag}`;
  const repo = s.deps.repo(t.local);
  let fetched: Fetched | null;
  try {
    fetched = await fetchManifest(s, t, reference);
  } catch (e) {
    if (e instanceof OciError) throw e;
    if (local && isOutage(e)) return serveStale(s, t, tag, (e as Error).message);
    s.counters.requests.inc({ kind: 'manifest', result: 'error' });
    throw ociErrorForOutage(t, e);
  }
  if (!fetched) {
    if (!local) s.missing.set(key, Date.now() + t.upstream.negativeTtlMs);
    throw new OciError('MANIFEST_UNKNOWN', `${t.image}:${tag} is not known upstream at ${t.upstream.name}`, { tag });
  }
  const verdict = await judge(s, t, fetched, `${t.image}:${tag}`);
  if (verdict && !verdict.allowed)
    throw await refusal(s, t, tag, `${t.image}:${tag} is not fetched: ${verdict.reason}`, flow, who);
  await storeManifest(s, t, fetched);
  // The signatures come along before the tag, so a pull here (trust on pull) finds them with the image.
  if (s.deps.verify && !isEvidence(fetched.manifest)) await fetchAttachments(s, t, fetched.digest);
  await repo.tag(tag, fetched.digest);
  s.checked.set(key, Date.now());
  s.deps.changed?.();
  await s.tagState.fetched(t.local, tag, fetched.digest).catch(() => undefined);
  s.counters.requests.inc({ kind: 'manifest', result: 'miss' });
  const moved = local ? ` (moved from ${local})` : '';
  s.deps.log.info(
    { upstream: t.upstream.name, image: t.image, tag, digest: fetched.digest },
    `cache: fetched ${t.image}:${tag}${moved}`,
  );
  await s.reports.report({
    ...who,
    action: 'fetch',
    repository: t.image,
    reference: `${tag}@${fetched.digest}`,
    decision: 'allowed',
    reason: `fetched from ${t.upstream.name}${moved}`,
    ...(flow ? { rule: flowLabel(flow) } : {}),
  });
  if (flow?.spec.referrers && !s.deps.verify) s.inBackground(fetchAttachments(s, t, fetched.digest));
}

function serveStale(s: CacheState, t: CacheTarget, tag: string, why: string): void {
  s.counters.requests.inc({ kind: 'manifest', result: 'stale' });
  s.deps.log.warn(
    { upstream: t.upstream.name, image: t.image, tag, reason: why },
    `cache: serving ${t.image}:${tag} stale: ${why}`,
  );
}
