// Brings a fetched manifest's attachments along from upstream: its referrers and its cosign tags.
import { digestTag, isDigest, type Digest } from '../oci/digest.js';
import { referencedBlobs } from '../oci/manifest.js';
import { readJson } from '../transport/registry-client.js';
import { isEvidence } from '../sign/evidence.js';
import { blobFillFor } from './cache-blobs.js';
import { upstreamRequest, type CacheState } from './cache-state.js';
import { fetchManifest, storeManifest } from './manifest-fetch.js';
import type { CacheTarget } from './names.js';

const COSIGN_SUFFIXES = ['sig', 'att', 'sbom'];

/** Brings the upstream's referrers and cosign tags of a fetched manifest along (flows with `referrers: true`). */
export async function fetchAttachments(s: CacheState, t: CacheTarget, subject: Digest): Promise<void> {
  const wanted: { reference: string; tag?: string }[] = [];
  try {
    const res = await upstreamRequest(t, 'GET', `referrers/${subject}`, {
      accept: 'application/vnd.oci.image.index.v1+json',
    });
    if (res.statusCode === 200) {
      const doc = await readJson<{ manifests?: { digest?: string }[] }>(
        res,
        `${t.image}: referrers of ${subject}`,
        'referrers',
      );
      for (const d of doc.manifests ?? []) if (d.digest && isDigest(d.digest)) wanted.push({ reference: d.digest });
    } else await res.body.dump();
  } catch (e) {
    s.deps.log.warn(
      { image: t.image, subject, err: (e as Error).message },
      'cache: referrers of a fetched manifest could not be listed',
    );
  }
  for (const suffix of COSIGN_SUFFIXES)
    wanted.push({ reference: `${digestTag(subject)}.${suffix}`, tag: `${digestTag(subject)}.${suffix}` });
  const repo = s.deps.repo(t.local);
  for (const w of wanted) {
    try {
      const got = await fetchManifest(s, t, w.reference);
      if (!got) continue;
      // Under a trust rule only evidence comes along: an image attached as a referrer or pushed as `.sig`
      // is no signature.
      if (s.deps.verify && !isEvidence(got.manifest)) {
        s.deps.log.warn(
          { image: t.image, reference: w.reference, digest: got.digest },
          'cache: an attachment that is not a signature, attestation or SBOM was not fetched',
        );
        continue;
      }
      await storeManifest(s, t, got);
      if (w.tag) await repo.tag(w.tag, got.digest);
      if (got.manifest.kind === 'image') {
        for (const d of referencedBlobs(got.manifest)) {
          await s.deps.scanner.refresh(repo);
          const fill = await blobFillFor(s, t, d.digest);
          await fill?.finished;
        }
      }
    } catch (e) {
      s.deps.log.warn(
        { image: t.image, reference: w.reference, err: (e as Error).message },
        'cache: an attachment of a fetched manifest could not be fetched',
      );
    }
  }
  s.deps.changed?.();
}
