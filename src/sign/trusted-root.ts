import { createHash } from 'node:crypto';
import type { TrustedRoot } from '@sigstore/protobuf-specs';
import type { TrustMaterial } from '@sigstore/verify';
import { protobufSpecs, sigstoreVerify } from './sigstore.js';

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
  if (bytes.length > MAX_TRUSTED_ROOT_BYTES)
    throw new TrustedRootError(`${name}: ${bytes.length} bytes, over the ${MAX_TRUSTED_ROOT_BYTES}-byte bound`);
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new TrustedRootError(`${name}: not JSON`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new TrustedRootError(`${name}: not a JSON object`);
  const mt = (doc as { mediaType?: unknown }).mediaType;
  if (typeof mt !== 'string' || !MEDIA_TYPE.test(mt))
    throw new TrustedRootError(`${name}: media type ${JSON.stringify(mt)} is not a sigstore trusted root`);
  let material: TrustMaterial;
  let root: TrustedRoot;
  try {
    root = protobufSpecs().TrustedRoot.fromJSON(doc);
    material = sigstoreVerify().toTrustMaterial(root);
  } catch (e) {
    throw new TrustedRootError(`${name}: ${(e as Error).message}`);
  }
  if (root.certificateAuthorities.length === 0)
    throw new TrustedRootError(`${name}: lists no certificate authority (Fulcio)`);
  if (root.tlogs.length === 0) throw new TrustedRootError(`${name}: lists no transparency log (Rekor)`);
  const requireSCT = opts.requireSCT ?? root.ctlogs.length > 0;
  return { name, fingerprint: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, material, requireSCT };
}

// The PEM blocks of one type in a text, decoded.
function pemBlocks(text: string, type: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${type}-----([\\s\\S]*?)-----END ${type}-----`, 'g');
  return [...text.matchAll(re)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}

/**
 * A root from the pieces containers-policy.json names (`fulcio.caPath`/`caData`, `rekorPublicKeyPath`/`Data`):
 * Fulcio CA certificates (PEM, intermediates before their root) and Rekor public keys (PEM). As containers/image
 * does, no signed certificate timestamp is required: such a file names no CT log.
 */
export function rootFromPems(name: string, caPem: string, rekorKeyPems: string[]): SigstoreRoot {
  const certs = pemBlocks(caPem, 'CERTIFICATE');
  if (certs.length === 0) throw new TrustedRootError(`${name}: the Fulcio CA holds no PEM certificate`);
  const keys = rekorKeyPems.flatMap((p) => pemBlocks(p, 'PUBLIC KEY'));
  if (keys.length === 0) throw new TrustedRootError(`${name}: no Rekor public key (PEM) given`);
  const start = '1970-01-01T00:00:00Z';
  const doc = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: keys.map((der) => ({
      baseUrl: 'rekor',
      hashAlgorithm: 'SHA2_256',
      // keyDetails only tells PKCS#1 from SPKI here; these are SPKI, whatever the algorithm.
      publicKey: { rawBytes: der.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
      logId: { keyId: createHash('sha256').update(der).digest('base64') },
    })),
    certificateAuthorities: [
      {
        subject: {},
        uri: 'fulcio',
        certChain: { certificates: certs.map((c) => ({ rawBytes: c.toString('base64') })) },
        validFor: { start },
      },
    ],
    ctlogs: [],
    timestampAuthorities: [],
  };
  return parseTrustedRoot(Buffer.from(JSON.stringify(doc)), name, { requireSCT: false });
}
