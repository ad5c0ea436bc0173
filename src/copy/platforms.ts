import type { Descriptor } from '../oci/descriptor.js';
import type { ImageIndex } from '../oci/manifest.js';
import { formatPlatform, platformMatches, type Platform } from '../oci/platform.js';

// Docker's buildx attaches attestations as index children that point at the image they describe.
const REF_TYPE = 'vnd.docker.reference.type';
const REF_DIGEST = 'vnd.docker.reference.digest';

/** The platforms an index offers, as `os/arch[/variant]`. */
export function offeredPlatforms(index: ImageIndex): string[] {
  return index.manifests
    .filter((d) => d.platform && d.platform.os !== 'unknown')
    .map((d) => formatPlatform(d.platform!));
}

/**
 * Picks the children of an index for the wanted platforms: for each wanted platform the first
 * matching child (as a puller would), plus attestations that point at a chosen child.
 * Throws, naming what the index offers, when a wanted platform is not there.
 */
export function selectChildren(index: ImageIndex, wanted: Platform[]): Descriptor[] {
  const chosen: Descriptor[] = [];
  for (const w of wanted) {
    const match = index.manifests.find(
      (d) => d.platform && !d.annotations?.[REF_TYPE] && platformMatches(w, d.platform),
    );
    if (!match) {
      throw new Error(
        `the index has no ${formatPlatform(w)} image (it has: ${offeredPlatforms(index).join(', ') || 'no platforms'})`,
      );
    }
    if (!chosen.includes(match)) chosen.push(match);
  }
  const digests = new Set<string>(chosen.map((d) => d.digest));
  for (const d of index.manifests) {
    const target = d.annotations?.[REF_DIGEST];
    if (d.annotations?.[REF_TYPE] && target && digests.has(target) && !chosen.includes(d)) chosen.push(d);
  }
  return chosen;
}

/** Index bytes listing only `children` (for --rewrite-index); everything else in the document is kept. */
export function rewriteIndex(original: Buffer, children: Descriptor[]): Buffer {
  const doc = JSON.parse(original.toString('utf8')) as { manifests: { digest: string }[] };
  const keep = new Set<string>(children.map((c) => c.digest));
  doc.manifests = doc.manifests.filter((m) => keep.has(m.digest));
  return Buffer.from(JSON.stringify(doc));
}
