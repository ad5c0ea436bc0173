import type { Descriptor } from '../oci/descriptor.js';
import { parseManifest, type Manifest } from '../oci/manifest.js';
import { MAX_SIGNATURE_BYTES } from './discover.js';
import { COSE_MEDIA_TYPE, JWS_MEDIA_TYPE, NOTATION_ARTIFACT_TYPE } from './notation.js';
import { BUNDLE_MEDIA_TYPE, INTOTO_PAYLOAD_TYPE, SIMPLE_SIGNING_MEDIA_TYPE } from './types.js';

// Evidence is recognised by what its layers are, never by the tag it sits under: anyone can push an image
// as `sha256-<hex>.sig`, but a runtime cannot unpack a simple-signing payload or an SBOM into a filesystem.
// Verification is pure: this looks at a parsed manifest only.

/** DSSE envelope, as cosign writes attestations (`cosign attest`). */
const DSSE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';

/** Layers that hold a signature or an attestation: small documents, bounded like every signature read. */
const SIGNATURE_LAYERS = new Set<string>([
  SIMPLE_SIGNING_MEDIA_TYPE,
  BUNDLE_MEDIA_TYPE,
  DSSE_MEDIA_TYPE,
  INTOTO_PAYLOAD_TYPE,
  JWS_MEDIA_TYPE,
  COSE_MEDIA_TYPE,
]);
/** Layers that hold a software bill of materials (`cosign attach sbom`, oras, syft). */
const SBOM_LAYERS = new Set<string>([
  'application/spdx+json',
  'text/spdx',
  'text/spdx+xml',
  'text/spdx+json',
  'application/vnd.cyclonedx',
  'application/vnd.cyclonedx+json',
  'application/vnd.cyclonedx+xml',
  'application/vnd.syft+json',
]);
/** Largest SBOM layer taken as evidence: big SBOMs run to a few MiB, an image layer smuggled under the type is refused. */
export const MAX_SBOM_BYTES = 64 * 1024 * 1024;

// Older sigstore bundles carry their version as a parameter (`application/vnd.dev.sigstore.bundle+json;version=0.2`).
const isBundleType = (t: string): boolean =>
  t === BUNDLE_MEDIA_TYPE || t.startsWith('application/vnd.dev.sigstore.bundle');

function isEvidenceLayer(d: Descriptor): boolean {
  if (SIGNATURE_LAYERS.has(d.mediaType) || isBundleType(d.mediaType)) return d.size <= MAX_SIGNATURE_BYTES;
  if (SBOM_LAYERS.has(d.mediaType)) return d.size <= MAX_SBOM_BYTES;
  return false;
}

/** Artifact types a referrers index lists for signatures, attestations and SBOMs. */
function isEvidenceArtifactType(t: string | undefined): boolean {
  if (!t) return false;
  return (
    isBundleType(t) ||
    t.startsWith('application/vnd.dev.cosign') ||
    t === NOTATION_ARTIFACT_TYPE ||
    SIGNATURE_LAYERS.has(t) ||
    SBOM_LAYERS.has(t)
  );
}

/**
 * Whether a manifest is a signature, attestation or SBOM (evidence about an image) rather than an image:
 * an image manifest whose every layer is one of those documents, within its size bound, or a referrers
 * index that lists only such artifacts. Trust rules judge images; evidence is what they judge them by.
 */
export function isEvidence(m: Manifest): boolean {
  if (m.kind === 'index')
    return m.manifests.length > 0 && m.manifests.every((d) => isEvidenceArtifactType(d.artifactType));
  return m.layers.length > 0 && m.layers.every(isEvidenceLayer);
}

/** `isEvidence` of manifest bytes; bytes that do not parse are no evidence. */
export function isEvidenceBytes(bytes: Uint8Array, mediaType?: string): boolean {
  try {
    return isEvidence(parseManifest(bytes, mediaType));
  } catch {
    return false;
  }
}
