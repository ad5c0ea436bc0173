// The manifest as it will be written: which compression uncompressed layers get, and the rewritten manifest.
import type { Descriptor } from '../oci/descriptor.js';
import { parseManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';
import type { RawManifest } from '../transport/transport.js';
import { canZstd, isUncompressedLayer, rewriteLayers, type CompressFormat } from './compress.js';
import type { Copier } from './copier.js';
import { CopyError } from './types.js';

/** The compression for layers the source holds uncompressed, or none when nothing is to be compressed. */
export function compressFormat(c: Copier): CompressFormat {
  const { src, dst, opts } = c;
  if (!src.uncompressedLayers || dst.singleImage) return 'none';
  const format = opts.compressFormat ?? (opts.preserveDigests ? 'none' : 'gzip');
  if (format === 'none') return format;
  if (opts.preserveDigests) {
    throw new CopyError(
      `--preserve-digests: compressing the layers of ${src.description} with ${format} changes the manifest digest; pass --dest-compress-format none to copy them uncompressed`,
    );
  }
  if (format === 'zstd' && !canZstd())
    throw new CopyError(`zstd needs Node.js 22.15 or later (this is ${process.version}); use gzip or none`);
  return format;
}

/**
 * The manifest as it will be written. From a Docker archive or daemon into a registry or layout, an
 * image's uncompressed layers are compressed (new layer digests and media types, so a new manifest
 * digest), and a layout gets an OCI manifest rather than a Docker one (other tools read only OCI
 * manifests from a layout). The config is untouched: its diff_ids name the uncompressed layers, as
 * they must. Anything else is written as it is.
 */
export async function prepare(c: Copier, raw: RawManifest): Promise<RawManifest> {
  const { src, dst, opts, compressor } = c;
  if (!src.uncompressedLayers || dst.singleImage) return raw;
  const m = parseManifest(raw.bytes, raw.mediaType);
  if (m.kind !== 'image') return raw;
  const toOci = dst.prefersOci === true && !opts.preserveDigests && m.mediaType === MediaType.DockerManifest;
  const layers = compressor ? m.layers.filter((l) => isUncompressedLayer(l.mediaType)) : [];
  if (layers.length === 0 && !toOci) return raw;
  const oci = toOci || m.mediaType === MediaType.OciManifest || compressor?.format === 'zstd';
  const replaced = new Map<string, Descriptor>();
  await Promise.all(
    layers.map(async (l) => {
      const compressed = await c.run(() => compressor!.compress(src, l, oci));
      if (!replaced.has(l.digest)) opts.progress?.compressed?.(l, compressed);
      replaced.set(l.digest, compressed);
    }),
  );
  if (!src.digestChange && !c.warnedCompression) {
    // The source kept its manifest (a Docker 25+ archive): say why the digest changes after all.
    c.warnedCompression = true;
    c.warn(
      replaced.size > 0
        ? `the manifest digest changes: ${src.description} holds uncompressed layers, written ${compressor!.format}-compressed (--dest-compress-format none keeps them as they are)`
        : `the manifest digest changes: ${dst.description} gets an OCI manifest instead of the Docker one`,
    );
  }
  return rewriteLayers(raw, replaced, oci);
}
