import { createHash } from 'node:crypto';
import type { Bundle } from '@sigstore/bundle';
import type { SignedEntity } from '@sigstore/verify';
import { parseStatement } from './bundle.js';
import { certificateIdentity, type CertificateIdentity } from './fulcio.js';
import { parsePayload } from './payload.js';
import { sigstoreBundle, sigstoreCore, sigstoreVerify } from './sigstore.js';
import type { SigstoreRoot } from './trusted-root.js';
import type { SignatureCandidate, SignaturePayload } from './types.js';

// Keyless verification, offline and pure: a signature's Fulcio certificate must chain to a CA of the trusted
// root at the time the transparency log recorded it, that time must be vouched for by the log (a signed entry
// timestamp, and an inclusion proof under a signed checkpoint when the bundle has one), the log entry must be
// this very signature over these very bytes, and the signature must verify with the certificate's key.
// sigstore-js (@sigstore/verify) does the cryptography; this module turns what cosign writes into its input.

/** What a keyless check of one signature found. */
export type KeylessCheck =
  | { signed: false; reason: string }
  | { signed: true; identity: CertificateIdentity; payload: SignaturePayload }
  | { signed: true; identity: CertificateIdentity; payloadError: string };

/** Annotations cosign puts on a keyless `.sig` layer next to `dev.cosignproject.cosign/signature`. */
export const CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate';
export const CHAIN_ANNOTATION = 'dev.sigstore.cosign/chain';
export const REKOR_BUNDLE_ANNOTATION = 'dev.sigstore.cosign/bundle';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

class Unusable extends Error {}

function pemToDer(pem: string, what: string): Buffer {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new Unusable(`its ${what} is not a PEM certificate`);
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

/**
 * The sigstore bundle (v0.1 shape) equivalent to a keyless `.sig` layer: the certificate annotation, the Rekor
 * bundle annotation (SET, canonical body, integrated time, log index and id) and the signature over the payload.
 */
export function bundleOfSimpleSigning(c: SignatureCandidate): Bundle {
  if (!c.certificate) throw new Unusable('it carries no certificate (a key signature, not keyless)');
  if (!c.rekorBundle) throw new Unusable(`it carries no transparency-log bundle (${REKOR_BUNDLE_ANNOTATION})`);
  let rb: unknown;
  try {
    rb = JSON.parse(c.rekorBundle);
  } catch {
    throw new Unusable('its transparency-log bundle annotation is not JSON');
  }
  const p = isObject(rb) ? rb.Payload : undefined;
  if (!isObject(rb) || typeof rb.SignedEntryTimestamp !== 'string' || !isObject(p) || typeof p.body !== 'string') {
    throw new Unusable('its transparency-log bundle lacks SignedEntryTimestamp or Payload.body');
  }
  if (
    !Number.isSafeInteger(p.integratedTime) ||
    !Number.isSafeInteger(p.logIndex) ||
    typeof p.logID !== 'string' ||
    !/^[0-9a-f]{64}$/.test(p.logID)
  ) {
    throw new Unusable('its transparency-log bundle has a bad integratedTime, logIndex or logID');
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(p.body, 'base64').toString('utf8'));
  } catch {
    throw new Unusable('its transparency-log entry body is not JSON');
  }
  if (!isObject(body) || typeof body.kind !== 'string' || typeof body.apiVersion !== 'string')
    throw new Unusable('its transparency-log entry names no kind');
  const leaf = pemToDer(c.certificate, 'certificate annotation');
  return sigstoreBundle().bundleFromJSON({
    mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1',
    verificationMaterial: {
      x509CertificateChain: { certificates: [{ rawBytes: leaf.toString('base64') }] },
      tlogEntries: [
        {
          logIndex: String(p.logIndex),
          logId: { keyId: Buffer.from(p.logID, 'hex').toString('base64') },
          kindVersion: { kind: body.kind, version: body.apiVersion },
          integratedTime: String(p.integratedTime),
          inclusionPromise: { signedEntryTimestamp: rb.SignedEntryTimestamp },
          canonicalizedBody: p.body,
        },
      ],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    messageSignature: {
      messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(c.payload).digest('base64') },
      signature: c.signature ?? '',
    },
  });
}

function bundleOfReferrer(c: SignatureCandidate): Bundle {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(c.payload).toString('utf8'));
  } catch {
    throw new Unusable('the bundle is not JSON');
  }
  const b = sigstoreBundle().bundleFromJSON(doc);
  if (b.verificationMaterial.content.$case === 'publicKey')
    throw new Unusable('the bundle is signed with a key, not a certificate');
  if (b.content.$case !== 'dsseEnvelope') throw new Unusable('a message-signature bundle signs a blob, not an image');
  return b;
}

// Failures of the library say what failed in its words; the family of the code says it in ours.
function explain(e: unknown, root: SigstoreRoot): string {
  const code = (e as { code?: string }).code ?? '';
  const msg = (e as Error).message;
  if (code.startsWith('CERTIFICATE'))
    return `its certificate does not chain to a CA of ${root.name} valid at the logged time (${msg})`;
  if (code.startsWith('TLOG_BODY')) return `its transparency-log entry is not for this signature (${msg})`;
  if (code.startsWith('TLOG') || code.startsWith('TIMESTAMP'))
    return `its transparency-log proof does not verify against ${root.name} (${msg})`;
  if (code.startsWith('SIGNATURE')) return 'its signature does not verify with its certificate';
  return `it does not verify against ${root.name} (${msg})`;
}

/** Checks one signature keylessly against one trusted root; pure. The identity is returned, not judged. */
export function verifyKeyless(c: SignatureCandidate, root: SigstoreRoot): KeylessCheck {
  let bundle: Bundle;
  let entity: SignedEntity;
  try {
    bundle = c.kind === 'simple-signing' ? bundleOfSimpleSigning(c) : bundleOfReferrer(c);
    entity = sigstoreVerify().toSignedEntity(bundle, c.kind === 'simple-signing' ? Buffer.from(c.payload) : undefined);
  } catch (e) {
    return { signed: false, reason: e instanceof Unusable ? e.message : `unreadable: ${(e as Error).message}` };
  }
  try {
    new (sigstoreVerify().Verifier)(root.material, {
      ctlogThreshold: root.requireSCT ? 1 : 0,
      tlogThreshold: 1,
      timestampThreshold: 1,
    }).verify(entity);
  } catch (e) {
    return { signed: false, reason: explain(e, root) };
  }
  const key = entity.key;
  const identity = certificateIdentity(
    key.$case === 'certificate' ? key.certificate : sigstoreCore().X509Certificate.parse(Buffer.alloc(0)),
  );
  try {
    if (c.kind === 'simple-signing') return { signed: true, identity, payload: parsePayload(c.payload) };
    const env = bundle.content.$case === 'dsseEnvelope' ? bundle.content.dsseEnvelope : undefined;
    return { signed: true, identity, payload: parseStatement(env!.payload) };
  } catch (e) {
    return { signed: true, identity, payloadError: (e as Error).message };
  }
}
