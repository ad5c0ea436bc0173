// Copying what a manifest names: an image's blobs, or an index's children with theirs.
import type { Descriptor } from '../oci/descriptor.js';
import { parseManifest, referencedBlobs, type Manifest } from '../oci/manifest.js';
import type { RawManifest } from '../transport/transport.js';
import { copyBlob } from './blobs.js';
import type { Copier } from './copier.js';
import { prepare } from './prepare.js';

/** Copies a manifest and everything under it (every child of an index); does not write the manifest itself. */
export async function copyContents(c: Copier, m: Manifest): Promise<void> {
  if (m.kind === 'image') {
    // Layers before the config, as a registry checking references expects them all by manifest time.
    await Promise.all([...m.layers, m.config].filter((b) => referencedBlobs(m).includes(b)).map((b) => copyBlob(c, b)));
    return;
  }
  await Promise.all(m.manifests.map((d) => copyChild(c, d)));
}

/** Copies a child manifest (by digest) with its contents. */
export async function copyChild(c: Copier, d: Descriptor): Promise<RawManifest> {
  const raw = await prepare(c, await c.src.getManifest(d.digest));
  await copyContents(c, parseManifest(raw.bytes, raw.mediaType));
  await c.putManifest(raw);
  c.record(raw, d.platform);
  return raw;
}
