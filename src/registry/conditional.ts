import type { FastifyRequest } from 'fastify';
import type { Digest } from '../oci/digest.js';

/** The ETag Sluice sends for manifests and blobs: the digest, quoted (a strong validator: content never changes). */
export function etagOf(digest: Digest): string {
  return `"${digest}"`;
}

/**
 * Whether If-None-Match names the current representation, so the answer is 304 (RFC 9110 §13.1.2): `*`,
 * or any entity tag in the list that equals ours by weak comparison (`W/"…"` matches `"…"`). A bare
 * digest without quotes matches too, as Distribution accepts it.
 */
export function ifNoneMatchHits(req: FastifyRequest, digest: Digest): boolean {
  const raw = req.headers['if-none-match'];
  if (raw === undefined) return false;
  // Node joins repeated If-None-Match lines with ", "; digests hold no commas, so splitting is safe.
  for (const part of raw.split(',')) {
    const tag = part.trim();
    if (tag === '*') return true;
    const opaque = tag.startsWith('W/') ? tag.slice(2) : tag;
    if (opaque === etagOf(digest) || opaque === digest) return true;
  }
  return false;
}
