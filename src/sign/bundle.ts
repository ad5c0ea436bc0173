import { BUNDLE_MEDIA_TYPE, COSIGN_SIGN_PREDICATE, INTOTO_PAYLOAD_TYPE, type SignaturePayload } from './types.js';
import { decodeBase64 } from './crypto.js';

/** Thrown for a bundle that is not a DSSE image signature Sluice can check. */
export class BundleError extends Error {}

const STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
const STATEMENT_V01 = 'https://in-toto.io/Statement/v0.1';

/** DSSE's pre-authentication encoding: what a DSSE signature is really over. */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `),
    type,
    Buffer.from(` ${payload.length} `),
    Buffer.from(payload),
  ]);
}

/** The in-toto statement cosign 3 signs for an image, plus the image's name as the subject's `name` (cosign leaves it out; identity rules need it). */
export function buildStatement(manifestDigest: string, dockerReference?: string): Buffer {
  const [algorithm, hex] = manifestDigest.split(':') as [string, string];
  const subject: Record<string, unknown> = {};
  if (dockerReference) subject.name = dockerReference;
  subject.digest = { [algorithm]: hex };
  return Buffer.from(
    JSON.stringify({ _type: STATEMENT_V1, subject: [subject], predicateType: COSIGN_SIGN_PREDICATE, predicate: {} }),
  );
}

/** A sigstore bundle v0.3 holding one DSSE envelope signed with a key (no certificate, no transparency-log entry). */
export function buildBundle(statement: Uint8Array, signature: Uint8Array, keyHint: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      mediaType: BUNDLE_MEDIA_TYPE,
      verificationMaterial: { publicKey: { hint: keyHint }, tlogEntries: [], timestampVerificationData: {} },
      dsseEnvelope: {
        payload: Buffer.from(statement).toString('base64'),
        payloadType: INTOTO_PAYLOAD_TYPE,
        signatures: [{ sig: Buffer.from(signature).toString('base64') }],
      },
    }),
  );
}

/** A bundle's DSSE envelope, decoded: the bytes to verify and the signatures over them. */
export interface ParsedBundle {
  /** PAE(payloadType, payload): what each signature covers. */
  signed: Buffer;
  /** The statement bytes. */
  payload: Buffer;
  signatures: Buffer[];
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

// The standard and URL-safe alphabets both appear in the wild (protobuf JSON allows either).
function b64(text: unknown, what: string): Buffer {
  if (typeof text !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(text))
    throw new BundleError(`${what} is not base64`);
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/** Reads a sigstore bundle's DSSE envelope (v0.1 to v0.3 media types); a message-signature bundle is for blobs, not images. */
export function parseBundle(bytes: Uint8Array): ParsedBundle {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new BundleError('bundle is not JSON');
  }
  if (!isObject(doc)) throw new BundleError('bundle is not a JSON object');
  const mt = doc.mediaType;
  if (
    typeof mt !== 'string' ||
    !/^application\/vnd\.dev\.sigstore\.bundle(\.v0\.[1-3]\+json|\+json;version=0\.[1-3])$/.test(mt)
  ) {
    throw new BundleError(`bundle media type ${JSON.stringify(mt)} is not a sigstore bundle v0.1 to v0.3`);
  }
  const env = doc.dsseEnvelope;
  if (!isObject(env))
    throw new BundleError(
      doc.messageSignature ? 'a message-signature bundle signs a blob, not an image' : 'bundle has no DSSE envelope',
    );
  if (env.payloadType !== INTOTO_PAYLOAD_TYPE)
    throw new BundleError(`DSSE payload type ${JSON.stringify(env.payloadType)} is not ${INTOTO_PAYLOAD_TYPE}`);
  const payload = b64(env.payload, 'DSSE payload');
  if (!Array.isArray(env.signatures) || env.signatures.length === 0 || env.signatures.length > 16)
    throw new BundleError('DSSE envelope needs 1 to 16 signatures');
  const signatures = env.signatures.map((s, i) => {
    if (!isObject(s)) throw new BundleError(`DSSE signature ${i + 1} is not an object`);
    const sig = typeof s.sig === 'string' ? (decodeBase64(s.sig) ?? b64(s.sig, `DSSE signature ${i + 1}`)) : undefined;
    if (!sig || sig.length === 0) throw new BundleError(`DSSE signature ${i + 1} has no sig`);
    return sig;
  });
  return { signed: pae(INTOTO_PAYLOAD_TYPE, payload), payload, signatures };
}

/** Reads a verified statement as a signature payload: a cosign image signature over one digest, and the subject's name when it has one. */
export function parseStatement(bytes: Uint8Array): SignaturePayload {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new BundleError('in-toto statement is not JSON');
  }
  if (!isObject(doc)) throw new BundleError('in-toto statement is not an object');
  if (doc._type !== STATEMENT_V1 && doc._type !== STATEMENT_V01)
    throw new BundleError(`statement type ${JSON.stringify(doc._type)} is not in-toto v1`);
  if (doc.predicateType !== COSIGN_SIGN_PREDICATE) {
    throw new BundleError(
      `an attestation of type ${JSON.stringify(doc.predicateType)}, not a cosign image signature (${COSIGN_SIGN_PREDICATE})`,
    );
  }
  const subjects = doc.subject;
  // One subject: a statement over several images would sign each of them with one name.
  if (!Array.isArray(subjects) || subjects.length !== 1 || !isObject(subjects[0]))
    throw new BundleError('statement must have exactly one subject');
  const s = subjects[0];
  const digests = s.digest;
  if (!isObject(digests)) throw new BundleError('statement subject has no digest');
  const alg = typeof digests.sha256 === 'string' ? 'sha256' : typeof digests.sha512 === 'string' ? 'sha512' : undefined;
  if (!alg) throw new BundleError('statement subject has no sha256 or sha512 digest');
  const out: SignaturePayload = { manifestDigest: `${alg}:${digests[alg] as string}` };
  if (s.name !== undefined) {
    if (typeof s.name !== 'string') throw new BundleError('statement subject name is not a string');
    if (s.name) out.dockerReference = s.name;
  }
  return out;
}
