// Reads a manifest from upstream and checks it (digest, size, shape, trust) before the cache stores its bytes.
import { digestOf, isDigest, type Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { ManifestError, parseManifest, type Manifest } from '../oci/manifest.js';
import { MANIFEST_MEDIA_TYPES } from '../oci/mediatypes.js';
import type { RepositoryStore } from '../storage/repository.js';
import { TooLargeError } from '../transport/bounded.js';
import { errorFrom, header, readBody, type ClientResponse } from '../transport/registry-client.js';
import { manifestClaims } from '../gc/claim.js';
import { isEvidence } from '../sign/evidence.js';
import { upstreamRequest, type CacheState } from './cache-state.js';
import type { CacheTarget } from './names.js';

/** The manifest media types the cache asks upstream for. */
export const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

/** A manifest read from upstream and checked, not yet stored. */
export interface Fetched {
  digest: Digest;
  manifest: Manifest;
  bytes: Buffer;
}

/** Fetches a manifest (by tag or digest) and checks its digest and shape, storing nothing; null on upstream 404. */
export async function fetchManifest(s: CacheState, t: CacheTarget, reference: string): Promise<Fetched | null> {
  const res = await upstreamRequest(t, 'GET', `manifests/${encodeURIComponent(reference)}`, { accept: ACCEPT });
  if (res.statusCode === 404) {
    await res.body.dump();
    return null;
  }
  if (res.statusCode !== 200) throw await errorFrom(res, `${t.image}: manifest ${reference}`);
  const bytes = await readManifest(res, s.deps.manifestLimit, `${t.image}: manifest ${reference}`);
  s.counters.upstreamBytes.inc({ upstream: t.upstream.name }, bytes.length);
  const digest = digestOf(bytes);
  if (isDigest(reference) && digest !== reference) {
    throw new OciError(
      'MANIFEST_INVALID',
      `upstream ${t.upstream.name} sent a manifest with digest ${digest} for ${t.image}@${reference}`,
    );
  }
  const announced = header(res, 'docker-content-digest');
  if (announced?.startsWith('sha256:') && announced !== digest) {
    const said = `upstream ${t.upstream.name} announced ${announced} for ${t.image}:${reference}`;
    throw new OciError('MANIFEST_INVALID', `${said} but sent bytes with digest ${digest}`);
  }
  let manifest: Manifest;
  try {
    manifest = parseManifest(bytes, header(res, 'content-type')?.split(';')[0]?.trim());
  } catch (e) {
    if (e instanceof ManifestError)
      throw new OciError(
        'MANIFEST_INVALID',
        `upstream ${t.upstream.name} sent an invalid manifest for ${t.image}:${reference}: ${e.message}`,
      );
    throw e;
  }
  return { digest, manifest, bytes };
}

/** Stores a fetched manifest's exact bytes (after every check on it passed). */
export async function storeManifest(s: CacheState, t: CacheTarget, f: Fetched): Promise<void> {
  // Claimed first, so a collector sweeping meanwhile cannot delete what the manifest names.
  await s.deps.claim?.(manifestClaims(f.digest, f.manifest));
  await s.deps.repo(t.local).putManifest(f.bytes, f.manifest.subject?.digest);
}

/**
 * The trust verdict for a manifest fetched from upstream, before any of it is stored: undefined when no
 * rule covers the image or it is evidence (a signature, attestation or SBOM, by its layers' media types);
 * otherwise the verdict over the signatures upstream shows for it.
 */
export async function judge(
  s: CacheState,
  t: CacheTarget,
  f: Fetched,
  dockerReference: string,
): Promise<{ allowed: boolean; reason: string } | undefined> {
  if (!s.deps.verify || isEvidence(f.manifest)) return undefined;
  const source = t.upstream.source(t.remote, f.digest);
  try {
    return await s.deps.verify(t.image, source, f.digest, dockerReference);
  } finally {
    await source.close();
  }
}

/** Whether the repository holds the manifest and it is evidence (a signature, attestation or SBOM). */
export async function isEvidenceStored(repo: RepositoryStore, digest: Digest): Promise<boolean> {
  const m = await repo.getManifest(digest);
  if (!m) return false;
  try {
    return isEvidence(parseManifest(m.bytes));
  } catch {
    return false;
  }
}

/** Reads an upstream manifest within the registry's manifest limit (and the client's); too large: MANIFEST_INVALID. */
async function readManifest(res: ClientResponse, limit: number, what: string): Promise<Buffer> {
  try {
    return await readBody(res, what, 'manifest', { maxBytes: limit });
  } catch (e) {
    if (e instanceof TooLargeError) throw new OciError('MANIFEST_INVALID', e.message);
    throw e;
  }
}
