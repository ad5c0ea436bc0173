import type { Digest } from '../oci/digest.js';
import type { KeylessIdentity } from './fulcio.js';
import type { SigstoreRoot } from './trusted-root.js';
import type { NotationEnforcement, NotationStore } from './notation.js';

/** Annotation on a `.sig` layer that holds the base64 signature (cosign's simple signing). */
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** Media type of a simple-signing payload layer. */
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
/** The `critical.type` cosign writes and containers/image requires. */
export const SIMPLE_SIGNING_TYPE = 'cosign container image signature';
/** Media type (and artifactType) of a sigstore bundle, as cosign 3 attaches it. */
export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
/** The predicate type cosign 3 uses for an image signature (not an attestation). */
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
/** DSSE payload type of an in-toto statement. */
export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

/** What a simple-signing payload claims: the name the signer gave the image and its manifest digest. */
export interface SignaturePayload {
  /** `critical.identity.docker-reference`; undefined for a bundle whose statement names no image (cosign 3). */
  dockerReference?: string;
  /** `critical.image.docker-manifest-digest` (or the in-toto subject digest). */
  manifestDigest: string;
  /** `optional` as signed, for display (creator, timestamp, annotations). */
  optional?: Record<string, unknown> | null;
}

/**
 * Which names a signature may carry for an image, as containers-policy.json's `signedIdentity` says.
 * `matchRepoDigestOrExact` is the default there and here.
 */
export type IdentityRule =
  | { type: 'matchExact' }
  | { type: 'matchRepoDigestOrExact' }
  | { type: 'matchRepository' }
  | { type: 'exactReference'; dockerReference: string }
  | { type: 'exactRepository'; dockerRepository: string }
  | { type: 'remapIdentity'; prefix: string; signedPrefix: string };

/** A public key a signature may be made with. */
export interface TrustedKey {
  /** Where the key came from (file path, `keyData`), for messages. */
  name: string;
  /** `SHA256:<base64>` of the DER SubjectPublicKeyInfo, as `ssh-keygen -l` spells fingerprints. */
  fingerprint: string;
  /** PEM text of the SubjectPublicKeyInfo. */
  pem: string;
}

/** One requirement of a containers-policy.json requirement list. */
export type TrustRequirement =
  | { type: 'insecureAcceptAnything' }
  | { type: 'reject' }
  | { type: 'sigstoreSigned'; keys: TrustedKey[]; keyless?: KeylessTrust; signedIdentity: IdentityRule }
  | NotationRequirement;

/** A Notary Project signature from one of the trust stores, by a leaf whose subject is one of the identities. */
export interface NotationRequirement {
  type: 'notationSigned';
  stores: NotationStore[];
  /** notation's trustedIdentities: `*`, or `x509.subject: C=US, O=Acme, CN=release`. */
  identities: string[];
  /** Where the requirement came from (a trust policy's name), for messages. */
  name?: string;
  /** What a verification level enforces and only logs (trustpolicy.json); strict when absent. */
  enforcement?: NotationEnforcement;
  /** The level's name, for messages. */
  level?: string;
}

/** Keyless trust: the roots a Fulcio certificate may chain to, and the identities (any one) it must carry. */
export interface KeylessTrust {
  roots: SigstoreRoot[];
  identities: KeylessIdentity[];
}

/** A signature found next to an image, fetched and bounded, not yet trusted. */
export interface SignatureCandidate {
  /** `simple-signing` for a `.sig` layer, `bundle` for a sigstore bundle referrer, `notation` for a Notary Project envelope. */
  kind: 'simple-signing' | 'bundle' | 'notation';
  /** Notation: the envelope's media type (`application/jose+json`, `application/cose`). */
  mediaType?: string;
  /** Where it was found, for messages: `tag sha256-….sig, layer 1`, `referrer sha256:…`. */
  where: string;
  /** Identifies this exact signature for caching: covers both the payload and the signature bytes. */
  id: Digest;
  /** Simple signing: the payload blob. Bundle: the bundle JSON. Empty when `problem` is set. */
  payload: Uint8Array;
  /** Simple signing: the base64 signature from the layer annotation. */
  signature?: string;
  /** Keyless `.sig` layer: the Fulcio certificate (PEM), its chain and the Rekor bundle, from the layer's annotations. */
  certificate?: string;
  chain?: string;
  rekorBundle?: string;
  /** Set when the signature could not be read (too large, blob missing): it is reported, never accepted. */
  problem?: string;
}

/** The image a verification is about: the digest of the manifest it has and, when it has one, its name. */
export interface ImageIdentity {
  digest: Digest;
  /** The Docker reference the image is known by (`host/repo:tag` or `host/repo@digest`); undefined for an OCI layout. */
  dockerReference?: string;
}

/** What became of one signature under one requirement. */
export interface SignatureVerdict {
  where: string;
  kind: SignatureCandidate['kind'];
  accepted: boolean;
  /** One human sentence: why it satisfies or why not. */
  reason: string;
  /** The key that verified the signature, when one did. */
  key?: string;
  /** Who signed keylessly, when the certificate and log proof verified: subject, issuer, workflow claims. */
  signer?: string;
  /** What the signature claims, when its signature verified and its payload parsed. */
  payload?: SignaturePayload;
}

/** The outcome of checking an image's signatures against one requirement. */
export interface VerificationResult {
  requirement: string;
  satisfied: boolean;
  /** One line for the whole requirement. */
  summary: string;
  /** Keys tried, by name and fingerprint. */
  keysTried: string[];
  signatures: SignatureVerdict[];
}

/** The outcome of a whole requirement list (all must be satisfied, as containers-policy.json has it). */
export interface PolicyDecision {
  allowed: boolean;
  /** Which scope of the policy applied (`docker:host/repo`, `default`), when read from a policy file. */
  scope?: string;
  results: VerificationResult[];
  /** One line: the first unmet requirement, or what allowed the image. */
  summary: string;
}
