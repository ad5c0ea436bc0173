// The signing API other parts call. Verification (verify.ts, identity.ts, payload.ts, bundle.ts,
// policy-file.ts) is pure; discover.ts, sign.ts, key-files.ts and verify-image.ts do the I/O.
export * from './types.js';
export { VerificationCache, defaultVerificationCache } from './cache.js';
export { trustedKeyFromPem, keyFingerprint, KeyError } from './crypto.js';
export { matchIdentity, parseIdentityRule, checkIdentityRule, describeRule, IdentityRuleError } from './identity.js';
export { parsePayload, buildPayload, PayloadError } from './payload.js';
export { evaluateRequirements, verifyRequirement, judgeSignature, describeRequirement } from './verify.js';
export {
  parsePolicy,
  resolvePolicy,
  requirementsFor,
  dockerScopes,
  layoutScopes,
  dockerSubject,
  PolicyFileError,
} from './policy-file.js';
export type { TrustPolicy, PolicySubject } from './policy-file.js';
export { findSignatures, signatureTag, MAX_SIGNATURE_BYTES } from './discover.js';
export { isEvidence, isEvidenceBytes } from './evidence.js';
export { checkImageTrust, verifyImage, locateImage, requirementsOf } from './verify-image.js';
export { signImage, defaultIdentity } from './sign.js';
export { readPublicKeys, readSigningKey, readPassword, loadPolicyFile } from './key-files.js';
export { generateKeyPair, decryptPrivateKey, encryptPrivateKey, PrivateKeyError } from './keys.js';
export { parseTrustedRoot, rootFromPems, TrustedRootError, MAX_TRUSTED_ROOT_BYTES } from './trusted-root.js';
export type { SigstoreRoot } from './trusted-root.js';
export { readTrustedRoot, publicGoodRoot, PUBLIC_GOOD, PUBLIC_GOOD_PATH } from './root-files.js';
export {
  verifyKeyless,
  bundleOfSimpleSigning,
  CERTIFICATE_ANNOTATION,
  CHAIN_ANNOTATION,
  REKOR_BUNDLE_ANNOTATION,
} from './keyless.js';
export type { KeylessCheck } from './keyless.js';
export {
  certificateIdentity,
  checkKeylessIdentity,
  matchKeylessIdentity,
  describeKeylessIdentity,
  describeSigner,
  KeylessIdentityError,
} from './fulcio.js';
export type { CertificateIdentity, KeylessIdentity, WorkflowClaims } from './fulcio.js';
export {
  verifyNotation,
  matchTrustedIdentity,
  NOTATION_ARTIFACT_TYPE,
  JWS_MEDIA_TYPE,
  COSE_MEDIA_TYPE,
} from './notation.js';
export type { NotationStore, NotationCheck } from './notation.js';
export {
  parseNotationPolicy,
  notationPolicyFor,
  notationRequirement,
  NotationPolicyError,
  NOTATION_LEVELS,
} from './notation-policy.js';
export type { NotationPolicyEntry } from './notation-policy.js';
export { readTrustStore, loadNotationPolicy } from './notation-files.js';
export type { NotationPolicyFile } from './notation-files.js';
export { judgeNotation } from './verify.js';
