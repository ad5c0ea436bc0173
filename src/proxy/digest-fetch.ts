// Brings in a manifest pulled by digest: never from upstream when cached, judged by its index or the flows if not.
import type { Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { formatPlatform } from '../oci/platform.js';
import { decideFlow, flowLabel, platformAllowed, platformsText, type CompiledFlow } from '../policy/flows.js';
import { ANONYMOUS } from '../policy/types.js';
import type { Requester } from './cache-report.js';
import { refusal, type CacheState } from './cache-state.js';
import { fetchManifest, isEvidenceStored, judge, storeManifest, type Fetched } from './manifest-fetch.js';
import type { CacheTarget } from './names.js';
import { ociErrorForOutage } from './upstream-failure.js';

/**
 * Makes sure the local repository holds the manifest of this digest. A child of a cached index is allowed
 * by the platform filter of the image's flow; anything else by the flows for the digest, then by trust.
 */
export async function ensureByDigest(s: CacheState, t: CacheTarget, digest: Digest, who: Requester): Promise<void> {
  const repo = s.deps.repo(t.local);
  // By-digest pulls of cached content never touch upstream.
  if (await repo.hasManifest(digest)) {
    s.counters.requests.inc({ kind: 'manifest', result: 'hit' });
    return;
  }
  await s.deps.scanner.refresh(repo);
  const listing = await s.deps.scanner.indexListing(repo, digest);
  // A child of an index the trust check passed is covered by the index's signature; anything else is judged itself.
  const coveredByIndex = listing !== null && !(await isEvidenceStored(repo, listing.index));
  if (listing) {
    // A child of an index that came in through an approved tag: the platform filter decides.
    const flow = firstFlowFor(s, t);
    if (!platformAllowed(flow, listing.platform)) {
      s.counters.requests.inc({ kind: 'manifest', result: 'denied' });
      const what = listing.platform ? formatPlatform(listing.platform) : `manifest ${digest}`;
      const rule = flow ? flowLabel(flow) : 'the flow rules';
      const platforms = flow ? platformsText(flow) : 'some platforms';
      const absent = `${what} of index ${listing.index} is not stored in this registry`;
      throw new OciError('MANIFEST_UNKNOWN', `${absent}: ${rule} brings in only ${platforms} of ${t.image}`, {
        digest,
      });
    }
  } else {
    const decision = decideFlow(s.flows, { repository: t.image, digest });
    if (!decision.allowed) throw await refusal(s, t, digest, decision.reason, decision.flow, who);
  }
  if (s.deps.readOnly)
    throw new OciError(
      'MANIFEST_UNKNOWN',
      `${t.image}@${digest} is not cached, and this registry is read-only so it does not fetch`,
      { digest },
    );
  const key = `${t.local}@${digest}`;
  let run = s.inflight.get(key);
  if (!run) {
    run = fetchByDigest(s, t, digest, coveredByIndex, who).finally(() => s.inflight.delete(key));
    s.inflight.set(key, run);
  }
  await run;
}

/** Fetches, judges (unless an index's signature covers it) and stores a manifest by digest. */
async function fetchByDigest(
  s: CacheState,
  t: CacheTarget,
  digest: Digest,
  coveredByIndex: boolean,
  who: Requester,
): Promise<void> {
  let fetched: Fetched | null;
  try {
    fetched = await fetchManifest(s, t, digest);
  } catch (e) {
    if (e instanceof OciError) throw e;
    throw ociErrorForOutage(t, e);
  }
  if (!fetched)
    throw new OciError('MANIFEST_UNKNOWN', `${t.image}@${digest} is not known upstream at ${t.upstream.name}`, {
      digest,
    });
  if (!coveredByIndex) {
    const verdict = await judge(s, t, fetched, `${t.image}@${digest}`);
    if (verdict && !verdict.allowed)
      throw await refusal(s, t, digest, `${t.image}@${digest} is not fetched: ${verdict.reason}`, undefined, who);
  }
  await storeManifest(s, t, fetched);
  s.counters.requests.inc({ kind: 'manifest', result: 'miss' });
  await s.reports.report({
    ...who,
    action: 'fetch',
    repository: t.image,
    reference: digest,
    decision: 'allowed',
    reason: `fetched from ${t.upstream.name}`,
  });
  s.deps.changed?.();
}

/** The first allowing flow rule whose images match the name, whatever its tag filter (for platform checks). */
function firstFlowFor(s: CacheState, t: CacheTarget): CompiledFlow | undefined {
  for (const f of s.flows.flows) {
    if (f.spec.deny) continue;
    if (f.images.some((p) => p.matches({ repository: t.image }, ANONYMOUS))) return f;
  }
  return undefined;
}
