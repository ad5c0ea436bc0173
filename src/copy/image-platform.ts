// Checking --platform against a single image: the platform its config names.
import type { ImageManifest } from '../oci/manifest.js';
import { formatPlatform, platformMatches, type Platform } from '../oci/platform.js';
import type { ImageSource } from '../transport/transport.js';
import type { Copier } from './copier.js';
import { CopyError } from './types.js';

/** A single image asked for with --platform: fine when it is that platform, an error when it is another. */
export async function checkPlatforms(c: Copier, m: ImageManifest): Promise<void> {
  const wanted = c.opts.platforms ?? [];
  const has = await imagePlatform(c.src, m);
  if (!has) {
    c.warn(`${c.src.description} is a single image of no known platform, --platform is ignored`);
    return;
  }
  const missing = wanted.filter((w) => !platformMatches(w, has));
  if (missing.length > 0) {
    throw new CopyError(
      `the image is ${formatPlatform(has)} only; --platform ${missing.map(formatPlatform).join(', ')} matches nothing (${c.src.description} is a single image, not an index)`,
    );
  }
}

/** The platform an image's config names, or undefined when it names none (an artifact) or cannot be read. */
async function imagePlatform(src: ImageSource, m: ImageManifest): Promise<Platform | undefined> {
  if (m.config.size > 4 * 1024 * 1024) return undefined;
  try {
    const chunks: Buffer[] = [];
    for await (const c of await src.getBlob(m.config)) chunks.push(Buffer.from(c as Buffer));
    const doc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
      os?: unknown;
      architecture?: unknown;
      variant?: unknown;
    };
    if (typeof doc.os !== 'string' || typeof doc.architecture !== 'string' || !doc.os || !doc.architecture)
      return undefined;
    return typeof doc.variant === 'string' && doc.variant
      ? { os: doc.os, architecture: doc.architecture, variant: doc.variant }
      : { os: doc.os, architecture: doc.architecture };
  } catch {
    return undefined;
  }
}
