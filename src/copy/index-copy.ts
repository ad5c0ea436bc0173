// Copying an index: this machine's image alone, one image for a single-image destination, or chosen children.
import { digestOf } from '../oci/digest.js';
import { parseManifest, type Manifest } from '../oci/manifest.js';
import { hostPlatform } from '../oci/platform.js';
import { RegistryError } from '../transport/registry-client.js';
import type { RawManifest } from '../transport/transport.js';
import { copyChild, copyContents } from './contents.js';
import type { Copier } from './copier.js';
import { rewriteChildren } from './compress.js';
import { rewriteIndex, selectChildren } from './platforms.js';
import { prepare } from './prepare.js';
import { CopyError } from './types.js';

/** Copies the index `top` as the options ask and writes it (or the image chosen from it); returns what was written. */
export async function copyIndex(
  c: Copier,
  top: RawManifest,
  index: Extract<Manifest, { kind: 'index' }>,
  tag: string | undefined,
): Promise<RawManifest> {
  const { opts, dst } = c;
  const explicit = opts.platforms && opts.platforms.length > 0;
  if (!opts.all && !explicit) {
    // As docker pull does: only this machine's image, written as the image itself.
    const platform = opts.defaultPlatform ?? hostPlatform();
    const [child] = selectChildren(index, [platform]);
    const raw = await prepare(c, await c.src.getManifest(child!.digest));
    await copyContents(c, parseManifest(raw.bytes, raw.mediaType));
    await c.putManifest(raw, tag, true);
    c.record(raw, child!.platform);
    return raw;
  }
  const children = opts.all ? index.manifests : selectChildren(index, opts.platforms!);
  if (dst.singleImage) {
    const images = children.filter((child) => !child.annotations?.['vnd.docker.reference.type']);
    if (images.length !== 1) {
      throw new CopyError(
        `${dst.description} holds a single image: choose one platform with --platform (the index has ${images.length > 1 ? images.length : 'no'} matching images)`,
      );
    }
    const raw = await c.src.getManifest(images[0]!.digest);
    await copyContents(c, parseManifest(raw.bytes, raw.mediaType));
    await c.putManifest(raw, tag, true);
    c.record(raw, images[0]!.platform);
    return raw;
  }
  const written = await Promise.all(children.map((child) => copyChild(c, child)));
  const partial = children.length < index.manifests.length;
  let out = top;
  if (partial && opts.rewriteIndex) {
    if (opts.preserveDigests)
      throw new CopyError('--rewrite-index changes the index digest, which --preserve-digests forbids');
    const bytes = rewriteIndex(top.bytes, children);
    out = { bytes, mediaType: top.mediaType, digest: digestOf(bytes) };
    c.warn(
      `wrote a new index with ${children.length} of ${index.manifests.length} manifests: its digest is ${out.digest}, not ${top.digest} (signatures over the original index do not cover it)`,
    );
  }
  // Children whose layers were compressed have new digests: the index must name those.
  const renamed = new Map<string, RawManifest>();
  children.forEach((child, i) => {
    if (written[i]!.digest !== child.digest) renamed.set(child.digest, written[i]!);
  });
  if (renamed.size > 0) {
    const bytes = rewriteChildren(out.bytes, renamed);
    out = { bytes, mediaType: out.mediaType, digest: digestOf(bytes) };
  }
  try {
    await c.putManifest(out, tag, true);
  } catch (e) {
    if (partial && !opts.rewriteIndex && e instanceof RegistryError && e.code === 'MANIFEST_BLOB_UNKNOWN') {
      throw new CopyError(
        `${dst.description} refused the index ${top.digest} without its other platforms (${e.message}). ` +
          'Use a target that accepts partial indexes (Sluice with validation.manifests.indexes.platforms: none or list), ' +
          'or pass --rewrite-index to write a new index with only the chosen platforms (its digest changes).',
      );
    }
    throw e;
  }
  c.record(out);
  return out;
}
