import { SIMPLE_SIGNING_TYPE, type SignaturePayload } from './types.js';

/** Thrown for payload bytes that are not a simple-signing payload; the message says what is wrong. */
export class PayloadError extends Error {}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// containers/image reads these objects with exactly these fields: an unknown field in `critical`
// could carry a claim a verifier would ignore, so it makes the whole payload invalid.
function exactFields(v: unknown, where: string, fields: string[]): Json {
  if (!isObject(v)) throw new PayloadError(`${where} is not a JSON object`);
  for (const k of Object.keys(v))
    if (!fields.includes(k)) throw new PayloadError(`${where} has an unexpected field "${k}"`);
  for (const k of fields) if (!(k in v)) throw new PayloadError(`${where} lacks "${k}"`);
  return v;
}

/** The payload bytes cosign signs for `reference` at `digest` (`"optional":null` when there is nothing optional, as cosign writes it). */
export function buildPayload(
  dockerReference: string,
  manifestDigest: string,
  optional: Record<string, unknown> | null = null,
): Buffer {
  const doc = {
    critical: {
      identity: { 'docker-reference': dockerReference },
      image: { 'docker-manifest-digest': manifestDigest },
      type: SIMPLE_SIGNING_TYPE,
    },
    optional,
  };
  return Buffer.from(JSON.stringify(doc));
}

/** Parses a simple-signing payload as strictly as containers/image does (the fields of `critical` exactly, `optional` an object or null). */
export function parsePayload(bytes: Uint8Array): SignaturePayload {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new PayloadError('payload is not JSON');
  }
  const top = exactFields(doc, 'payload', ['critical', 'optional']);
  const critical = exactFields(top.critical, 'critical', ['identity', 'image', 'type']);
  if (critical.type !== SIMPLE_SIGNING_TYPE)
    throw new PayloadError(`critical.type is ${JSON.stringify(critical.type)}, not "${SIMPLE_SIGNING_TYPE}"`);
  const image = exactFields(critical.image, 'critical.image', ['docker-manifest-digest']);
  const identity = exactFields(critical.identity, 'critical.identity', ['docker-reference']);
  const digest = image['docker-manifest-digest'];
  const ref = identity['docker-reference'];
  if (typeof digest !== 'string' || digest === '')
    throw new PayloadError('critical.image.docker-manifest-digest is not a string');
  if (typeof ref !== 'string' || ref === '')
    throw new PayloadError('critical.identity.docker-reference is not a string');
  const optional = top.optional;
  if (optional !== null && !isObject(optional)) throw new PayloadError('optional is neither an object nor null');
  return { dockerReference: ref, manifestDigest: digest, optional };
}
