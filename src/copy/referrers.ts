// Bringing referrers and cosign tags along with the copied manifests, or saying what stays behind.
import type { Digest } from '../oci/digest.js';
import { digestTag } from '../oci/digest.js';
import { parseManifest } from '../oci/manifest.js';
import { isEvidence } from '../sign/evidence.js';
import type { RawManifest } from '../transport/transport.js';
import { copyContents } from './contents.js';
import type { Copier } from './copier.js';

/** Referrers of `subject` at the source and its cosign `sha256-<hex>.sig/.att/.sbom` tags. */
async function findReferrers(
  c: Copier,
  subject: Digest,
  seen: Set<Digest>,
): Promise<{ raw: RawManifest; tag?: string }[]> {
  const found: { raw: RawManifest; tag?: string }[] = [];
  if (c.src.listReferrers) {
    for (const d of await c.src.listReferrers(subject)) {
      if (seen.has(d.digest)) continue;
      found.push({ raw: await c.src.getManifest(d.digest) });
    }
  }
  if (c.src.getTaggedManifest) {
    for (const suffix of ['sig', 'att', 'sbom']) {
      const t = `${digestTag(subject)}.${suffix}`;
      const raw = await c.src.getTaggedManifest(t);
      if (raw) found.push({ raw, tag: t });
    }
  }
  return found;
}

/** A destination that holds one image (a Docker archive or daemon) has no place for referrers: say what stays behind. */
export async function skipReferrers(c: Copier, subjects: Digest[]): Promise<void> {
  const left: string[] = [];
  for (const subject of subjects) {
    for (const { raw, tag } of await findReferrers(c, subject, new Set(subjects))) left.push(tag ?? raw.digest);
  }
  if (left.length > 0) {
    c.warn(
      `${c.dst.description} holds one image and no referrers or signatures: --with-referrers skipped ${left.length} (${left.join(', ')})`,
    );
  }
}

/** Brings along referrers (artifacts whose subject is a copied manifest) and cosign tags. */
export async function copyReferrers(c: Copier, subjects: Digest[]): Promise<void> {
  const seen = new Set<Digest>(subjects);
  let queue = subjects;
  while (queue.length > 0) {
    const next: Digest[] = [];
    for (const subject of queue) {
      const found = await findReferrers(c, subject, seen);
      for (const { raw, tag } of found) {
        const m = parseManifest(raw.bytes, raw.mediaType);
        if (c.opts.evidenceOnly && !isEvidence(m)) {
          c.warn(
            `${tag ?? raw.digest} is attached to ${subject} but is no signature, attestation or SBOM: not copied, as no trust check judged it`,
          );
          continue;
        }
        await copyContents(c, m);
        await c.putManifest(raw, tag);
        c.record(raw);
        if (!seen.has(raw.digest)) {
          seen.add(raw.digest);
          next.push(raw.digest);
        }
      }
    }
    queue = next;
  }
}
