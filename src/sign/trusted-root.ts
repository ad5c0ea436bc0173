import { createHash } from 'node:crypto';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toTrustMaterial, type TrustMaterial } from '@sigstore/verify';

// A sigstore trusted root (`trusted_root.json`, as sigstore's TUF repository distributes it): the Fulcio CAs,
// Rekor keys, CT log keys and timestamp authorities keyless signatures are checked against. Pure: bytes in.

/** Largest trusted_root.json read: the public-good one is ~10 KiB. */
export const MAX_TRUSTED_ROOT_BYTES = 1024 * 1024;

/** Thrown for a file that is not a usable trusted root; the message says which part. */
export class TrustedRootError extends Error {
  override name = 'TrustedRootError';
}

const MEDIA_TYPE = /^application\/vnd\.dev\.sigstore\.trustedroot(\.v0\.\d+)?\+json(;version=0\.\d+)?$/;

/** A trusted root ready to verify against: its name for messages, a fingerprint for caching, the material. */
export interface SigstoreRoot {
  /** Where it came from (`public-good`, a file path), for messages. */
  name: string;
  /** `sha256:<hex>` of the file's bytes: verification results are cached per root. */
  fingerprint: string;
  material: TrustMaterial;
  /** Whether a certificate must carry a signed certificate timestamp from a CT log the root lists (cosign's default). */
  requireSCT: boolean;
}

/** Reads a trusted_root.json; refuses one without a Fulcio CA or a Rekor key, which could verify nothing keyless. */
export function parseTrustedRoot(bytes: Uint8Array, name: string, opts: { requireSCT?: boolean } = {}): SigstoreRoot {
  if (bytes.length > MAX_TRUSTED_ROOT_BYTES) throw new TrustedRootError(`${name}: ${bytes.length} bytes, over the ${MAX_TRUSTED_ROOT_BYTES}-byte bound`);
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new TrustedRootError(`${name}: not JSON`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new TrustedRootError(`${name}: not a JSON object`);
  const mt = (doc as { mediaType?: unknown }).mediaType;
  if (typeof mt !== 'string' || !MEDIA_TYPE.test(mt)) throw new TrustedRootError(`${name}: media type ${JSON.stringify(mt)} is not a sigstore trusted root`);
  let material: TrustMaterial;
  let root: TrustedRoot;
  try {
    root = TrustedRoot.fromJSON(doc);
    material = toTrustMaterial(root);
  } catch (e) {
    throw new TrustedRootError(`${name}: ${(e as Error).message}`);
  }
  if (root.certificateAuthorities.length === 0) throw new TrustedRootError(`${name}: lists no certificate authority (Fulcio)`);
  if (root.tlogs.length === 0) throw new TrustedRootError(`${name}: lists no transparency log (Rekor)`);
  const requireSCT = opts.requireSCT ?? root.ctlogs.length > 0;
  return { name, fingerprint: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, material, requireSCT };
}
