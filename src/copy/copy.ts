// The copy engine's entry: copies one image between transports, step by step (the steps live beside it).
import { parseManifest } from '../oci/manifest.js';
import type { ImageDestination, ImageSource, RawManifest } from '../transport/transport.js';
import { LayerCompressor } from './compress.js';
import { copyContents } from './contents.js';
import { Copier } from './copier.js';
import { checkPlatforms } from './image-platform.js';
import { copyIndex } from './index-copy.js';
import { compressFormat, prepare } from './prepare.js';
import { copyReferrers, skipReferrers } from './referrers.js';
import { CopyError, type CopyOptions, type CopySummary } from './types.js';

export { CopyError, type BlobAction, type CopyOptions, type CopyProgress, type CopySummary } from './types.js';

/** Runs the copy: the top manifest and everything under it, then referrers, then the destination's commit. */
async function copy(c: Copier): Promise<void> {
  const started = Date.now();
  const { src, dst, opts } = c;
  if (opts.rewriteIndex && opts.preserveDigests)
    throw new CopyError('--rewrite-index changes the index digest, which --preserve-digests forbids');
  for (const side of [src, dst]) {
    if (side.digestChange) {
      if (opts.preserveDigests)
        throw new CopyError(`--preserve-digests: ${side.description} changes manifest digests: ${side.digestChange}`);
      c.warn(`the manifest digest changes: ${side.digestChange}`);
    }
  }
  const format = compressFormat(c);
  if (format !== 'none') c.compressor = new LayerCompressor(format, opts.tmpDir);
  const top = await src.getManifest();
  const m = parseManifest(top.bytes, top.mediaType);
  c.summary.sourceDigest = top.digest;
  const tag = dst.tag;
  let written: RawManifest;
  if (m.kind === 'image') {
    if (opts.platforms?.length) await checkPlatforms(c, m);
    written = await prepare(c, top);
    await copyContents(c, parseManifest(written.bytes, written.mediaType));
    await c.putManifest(written, tag, true);
    c.record(written);
  } else {
    written = await copyIndex(c, top, m, tag);
  }
  c.summary.digest = written.digest;
  c.summary.mediaType = written.mediaType;
  if (dst.digestChange) {
    const image = parseManifest(written.bytes, written.mediaType);
    if (image.kind === 'image') c.summary.imageId = image.config.digest;
  }
  if (opts.withReferrers) {
    if (dst.singleImage) await skipReferrers(c, [...c.writtenManifests]);
    else await copyReferrers(c, [...c.writtenManifests]);
  }
  await dst.commit();
  c.summary.durationMs = Date.now() - started;
}

/** Copies the image `src` names to `dst` and returns what was done. Closes neither side. */
export async function copyImage(src: ImageSource, dst: ImageDestination, opts: CopyOptions = {}): Promise<CopySummary> {
  const c = new Copier(src, dst, opts);
  try {
    await copy(c);
  } finally {
    await c.cleanup();
  }
  return c.summary;
}
