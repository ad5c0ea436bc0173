import { X509Certificate, constants, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { X509Certificate as SigstoreCertificate } from '@sigstore/core';
import { type CborError, CborTag, decodeCbor, encodeCborArray, type CborValue } from './cbor.js';

// Notary Project (notation) signatures, verified offline and purely: a JWS or COSE envelope whose payload names
// the target manifest, signed by the leaf of an X.509 chain that ends at a certificate of a trust store, checked
// at a given time. Trust stores and trust policies are read elsewhere (notation-files.ts); here they are values.

/** artifactType of a notation signature manifest (a referrer of the image it signs). */
export const NOTATION_ARTIFACT_TYPE = 'application/vnd.cncf.notary.signature';
export const JWS_MEDIA_TYPE = 'application/jose+json';
export const COSE_MEDIA_TYPE = 'application/cose';
const PAYLOAD_TYPE = 'application/vnd.cncf.notary.payload.v1+json';

/** A named set of trusted certificates, as notation names them: `ca:acme`, `signingAuthority:acme`. */
export interface NotationStore {
  /** `<type>:<name>`. */
  name: string;
  type: 'ca' | 'signingAuthority' | 'tsa';
  certs: X509Certificate[];
}

/** What a failed check does, as notation's trust policy says: fail the signature, be logged, or not run at all. */
export type NotationAction = 'enforce' | 'log' | 'skip';

/** What a level does with each check it can relax; integrity (envelope, signature, digest) is always enforced. */
export interface NotationEnforcement {
  authenticity: NotationAction;
  authenticTimestamp: NotationAction;
  expiry: NotationAction;
  revocation: NotationAction;
}

/** notation's `strict` level: every check enforced. */
export const STRICT_ENFORCEMENT: NotationEnforcement = {
  authenticity: 'enforce',
  authenticTimestamp: 'enforce',
  expiry: 'enforce',
  revocation: 'enforce',
};

/**
 * What a notation check of one envelope found (before the digest and identity are judged). `logged` holds the
 * failures of checks the level only logs; `store` is absent when authenticity failed and was only logged.
 */
export type NotationCheck =
  | { signed: false; reason: string }
  | { signed: true; store?: string; subject: string; targetDigest: string; notAfter: number; logged: string[] };

/** Thrown for an envelope that cannot be read; the message says which part. */
export class NotationError extends Error {
  override name = 'NotationError';
}

interface Envelope {
  alg: string;
  signingScheme: string;
  /** Unix ms, from `io.cncf.notary.expiry`, when the signer set one. */
  expiry?: number;
  /** Unix ms, from `io.cncf.notary.authenticSigningTime` (the signingAuthority scheme's vouched time). */
  signingTime?: number;
  payload: Buffer;
  signed: Buffer;
  signature: Buffer;
  chain: Buffer[];
}

const KNOWN_CRIT = new Set([
  'io.cncf.notary.signingScheme',
  'io.cncf.notary.expiry',
  'io.cncf.notary.authenticSigningTime',
]);

function b64url(text: unknown, what: string): Buffer {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text)) throw new NotationError(`${what} is not base64url`);
  return Buffer.from(text, 'base64url');
}

function parseJws(bytes: Uint8Array): Envelope {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new NotationError('the JWS envelope is not JSON');
  }
  const protectedText = doc.protected;
  const header = JSON.parse(b64url(protectedText, 'protected header').toString('utf8') || 'null') as Record<
    string,
    unknown
  > | null;
  if (!header || typeof header !== 'object') throw new NotationError('the protected header is not a JSON object');
  const unprotected = doc.header as { x5c?: unknown } | undefined;
  if (!unprotected || !Array.isArray(unprotected.x5c) || unprotected.x5c.length === 0 || unprotected.x5c.length > 10) {
    throw new NotationError('the envelope carries no certificate chain (x5c)');
  }
  const crit = header.crit;
  if (!Array.isArray(crit)) throw new NotationError('the protected header has no crit list');
  const unknown = crit.filter((c) => !KNOWN_CRIT.has(c as string));
  if (unknown.length)
    throw new NotationError(
      `critical header ${unknown.join(', ')} is not understood (a verification plugin is needed)`,
    );
  if (header.cty !== PAYLOAD_TYPE)
    throw new NotationError(`content type ${JSON.stringify(header.cty)} is not ${PAYLOAD_TYPE}`);
  const env: Envelope = {
    alg: String(header.alg),
    signingScheme: String(header['io.cncf.notary.signingScheme']),
    payload: b64url(doc.payload, 'payload'),
    signed: Buffer.from(`${protectedText as string}.${doc.payload as string}`, 'ascii'),
    signature: b64url(doc.signature, 'signature'),
    chain: unprotected.x5c.map((c) => {
      if (typeof c !== 'string') throw new NotationError('x5c holds a non-string');
      return Buffer.from(c, 'base64');
    }),
  };
  if (typeof header['io.cncf.notary.expiry'] === 'string') env.expiry = Date.parse(header['io.cncf.notary.expiry']);
  const ast = header['io.cncf.notary.authenticSigningTime'];
  if (typeof ast === 'string' && Number.isFinite(Date.parse(ast))) env.signingTime = Date.parse(ast);
  return env;
}

const COSE_ALGS = new Map<number, string>([
  [-37, 'PS256'],
  [-38, 'PS384'],
  [-39, 'PS512'],
  [-7, 'ES256'],
  [-35, 'ES384'],
  [-36, 'ES512'],
]);

function parseCose(bytes: Uint8Array): Envelope {
  let top: CborValue;
  try {
    top = decodeCbor(bytes);
  } catch (e) {
    throw new NotationError(`the COSE envelope is not CBOR: ${(e as CborError).message}`);
  }
  const msg = top instanceof CborTag && top.tag === 18 ? top.value : top;
  if (!Array.isArray(msg) || msg.length !== 4) throw new NotationError('the COSE envelope is not a COSE_Sign1 message');
  const [prot, unprot, payload, signature] = msg;
  if (
    !(prot instanceof Uint8Array) ||
    !(unprot instanceof Map) ||
    !(payload instanceof Uint8Array) ||
    !(signature instanceof Uint8Array)
  ) {
    throw new NotationError('the COSE_Sign1 message has the wrong shape');
  }
  let header: CborValue;
  try {
    header = decodeCbor(prot);
  } catch (e) {
    throw new NotationError(`the COSE protected header is not CBOR: ${(e as Error).message}`);
  }
  if (!(header instanceof Map)) throw new NotationError('the COSE protected header is not a map');
  const alg = COSE_ALGS.get(header.get(1) as number);
  if (!alg) throw new NotationError(`COSE algorithm ${String(header.get(1))} is not one notation signs with`);
  const crit = header.get(2);
  if (!Array.isArray(crit)) throw new NotationError('the COSE protected header has no crit list');
  const unknown = crit.filter((c) => !KNOWN_CRIT.has(c as string));
  if (unknown.length)
    throw new NotationError(
      `critical header ${unknown.join(', ')} is not understood (a verification plugin is needed)`,
    );
  if (header.get(3) !== PAYLOAD_TYPE)
    throw new NotationError(`content type ${JSON.stringify(header.get(3))} is not ${PAYLOAD_TYPE}`);
  const x5chain = unprot.get(33);
  const chain = Array.isArray(x5chain) ? x5chain : x5chain instanceof Uint8Array ? [x5chain] : [];
  if (chain.length === 0 || chain.length > 10 || chain.some((c) => !(c instanceof Uint8Array)))
    throw new NotationError('the envelope carries no certificate chain (x5chain)');
  const env: Envelope = {
    alg,
    signingScheme: String(header.get('io.cncf.notary.signingScheme')),
    payload: Buffer.from(payload),
    signed: encodeCborArray(['Signature1', prot, new Uint8Array(0), payload]),
    signature: Buffer.from(signature),
    chain: chain.map((c) => Buffer.from(c as Uint8Array)),
  };
  const expiry = header.get('io.cncf.notary.expiry');
  if (expiry instanceof CborTag && typeof expiry.value === 'number') env.expiry = expiry.value * 1000;
  const ast = header.get('io.cncf.notary.authenticSigningTime');
  if (ast instanceof CborTag && typeof ast.value === 'number') env.signingTime = ast.value * 1000;
  return env;
}

function verifySignature(alg: string, key: KeyObject, data: Buffer, sig: Buffer): boolean {
  const bits = alg.slice(2);
  const hash = `sha${bits}`;
  try {
    if (alg.startsWith('PS'))
      return cryptoVerify(
        hash,
        data,
        { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(bits) / 8 },
        sig,
      );
    if (alg.startsWith('ES')) return cryptoVerify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, sig);
  } catch {
    return false;
  }
  return false;
}

const isCert = (a: X509Certificate, b: X509Certificate): boolean => a.fingerprint256 === b.fingerprint256;

// Authenticity: the chain is linked leaf to root and ends at (or is issued by) a certificate of the store.
function chainTrusted(chain: X509Certificate[], store: NotationStore): string | undefined {
  for (const [i, c] of chain.entries()) {
    const issuer = chain[i + 1];
    if (issuer && !(c.checkIssued(issuer) && c.verify(issuer.publicKey)))
      return `certificate ${i + 1} of the chain is not issued by the next one`;
  }
  const last = chain[chain.length - 1]!;
  const anchored = store.certs.some((t) => isCert(t, last) || (last.checkIssued(t) && last.verify(t.publicKey)));
  return anchored ? undefined : `its chain does not end at a certificate of trust store ${store.name}`;
}

// Authentic timestamp without a countersignature: every certificate must be valid at the time vouched for.
function validAt(chain: X509Certificate[], at: number, when: string): string | undefined {
  for (const [i, c] of chain.entries()) {
    if (Date.parse(c.validFrom) <= at && Date.parse(c.validTo) >= at) continue;
    const cert = `certificate ${i + 1} of the chain (${oneLine(c.subject)})`;
    return `${cert} is not valid ${when} (${c.validFrom} to ${c.validTo})`;
  }
  return undefined;
}

// Revocation, offline: a certificate that names an OCSP responder or a CRL has a status Sluice cannot learn without
// the network, which the spec calls "revocation unavailable" (notation's result with no responder is the same).
const CRL_DISTRIBUTION_POINTS = '2.5.29.31';
function revocationUnavailable(chain: X509Certificate[]): string | undefined {
  for (const [i, c] of chain.entries()) {
    const ocsp = /OCSP - URI:/.test(c.infoAccess ?? '');
    let crl = false;
    try {
      crl = SigstoreCertificate.parse(c.raw).extension(CRL_DISTRIBUTION_POINTS) !== undefined;
    } catch {
      crl = false;
    }
    if (ocsp || crl) {
      const via = [ocsp && 'an OCSP responder', crl && 'a CRL'].filter(Boolean).join(' and ');
      const status = `the revocation status of certificate ${i + 1} (${oneLine(c.subject)})`;
      return `${status} is unavailable: it names ${via}, and Sluice makes no network request while verifying`;
    }
  }
  return undefined;
}

/** A distinguished name on one line, as notation's trustedIdentities spell it (`C=US, ST=WA, O=Notary, CN=alpine`). */
export function oneLine(dn: string): string {
  return dn.split('\n').join(', ');
}

/**
 * Verifies one notation envelope (JWS or COSE) against trust stores at time `now` (Unix ms), with the checks a
 * verification level enforces or only logs (`enforcement`; strict by default). Pure. Integrity (the envelope,
 * its signature, a signing scheme notation defines) always fails the signature. The signing scheme picks the
 * stores: `notary.x509` needs a `ca` store, `notary.x509.signingAuthority` a `signingAuthority` store.
 */
export function verifyNotation(
  bytes: Uint8Array,
  mediaType: string,
  stores: NotationStore[],
  now: number,
  enforcement = STRICT_ENFORCEMENT,
): NotationCheck {
  let env: Envelope;
  let chain: X509Certificate[];
  try {
    env =
      mediaType === COSE_MEDIA_TYPE
        ? parseCose(bytes)
        : mediaType === JWS_MEDIA_TYPE
          ? parseJws(bytes)
          : (() => {
              throw new NotationError(`envelope type ${mediaType} is neither ${JWS_MEDIA_TYPE} nor ${COSE_MEDIA_TYPE}`);
            })();
    chain = env.chain.map((der) => new X509Certificate(der));
  } catch (e) {
    return {
      signed: false,
      reason: e instanceof NotationError ? e.message : `unreadable envelope: ${(e as Error).message}`,
    };
  }
  const leaf = chain[0]!;
  if (!verifySignature(env.alg, leaf.publicKey, env.signed, env.signature))
    return { signed: false, reason: `its ${env.alg} signature does not verify with its certificate` };
  const type =
    env.signingScheme === 'notary.x509'
      ? 'ca'
      : env.signingScheme === 'notary.x509.signingAuthority'
        ? 'signingAuthority'
        : undefined;
  if (!type)
    return {
      signed: false,
      reason: `signing scheme ${env.signingScheme} is not notary.x509 or notary.x509.signingAuthority`,
    };
  let target: unknown;
  try {
    const payload = JSON.parse(env.payload.toString('utf8')) as { targetArtifact?: { digest?: unknown } };
    target = payload.targetArtifact?.digest;
  } catch {
    return { signed: false, reason: 'its payload is not JSON' };
  }
  if (typeof target !== 'string') return { signed: false, reason: 'its payload names no targetArtifact digest' };

  const logged: string[] = [];
  // A failed check: its reason when enforced (the signature fails), else logged (or not run: skip) and undefined.
  const failed = (check: keyof NotationEnforcement, reason: string | undefined): string | undefined => {
    const action = enforcement[check];
    if (!reason || action === 'skip') return undefined;
    if (action === 'enforce') return reason;
    logged.push(`${check}: ${reason}`);
    return undefined;
  };
  let store: string | undefined;
  if (enforcement.authenticity !== 'skip') {
    const fitting = stores.filter((s) => s.type === type);
    const why = fitting.length
      ? []
      : [`signing scheme ${env.signingScheme} needs a ${type} trust store, and the rule names none`];
    for (const s of fitting) {
      const problem = chainTrusted(chain, s);
      if (!problem) {
        store = s.name;
        break;
      }
      why.push(problem);
    }
    const stop = failed('authenticity', store ? undefined : why.join('; '));
    if (stop) return { signed: false, reason: stop };
  }
  // notary.x509 without a timestamp countersignature: the chain must be valid now; signingAuthority: at the
  // authentic signing time the signature carries. (Timestamp countersignatures are not read: checked at now.)
  const at = type === 'ca' ? now : env.signingTime;
  const when = type === 'ca' ? 'now' : `at its signing time ${new Date(at ?? 0).toISOString()}`;
  const timeProblem = at === undefined ? 'the signature carries no authentic signing time' : validAt(chain, at, when);
  let stop = failed('authenticTimestamp', timeProblem);
  if (stop) return { signed: false, reason: stop };
  const expired = env.expiry !== undefined && env.expiry <= now;
  stop = failed('expiry', expired ? `the signature expired at ${new Date(env.expiry!).toISOString()}` : undefined);
  if (stop) return { signed: false, reason: stop };
  if (enforcement.revocation !== 'skip') {
    stop = failed('revocation', revocationUnavailable(chain));
    if (stop) return { signed: false, reason: stop };
  }
  // When a cached result must be checked again: once a check that passed on time could fail.
  const limits = [
    ...(timeProblem || type !== 'ca' ? [] : chain.map((c) => Date.parse(c.validTo))),
    ...(expired || env.expiry === undefined ? [] : [env.expiry]),
  ];
  const notAfter = Math.min(...limits, Infinity);
  const out: NotationCheck = { signed: true, subject: oneLine(leaf.subject), targetDigest: target, notAfter, logged };
  if (store) out.store = store;
  return out;
}

/** Whether a leaf subject satisfies one of notation's trustedIdentities (`*`, or `x509.subject: DN` whose RDNs the subject holds). */
export function matchTrustedIdentity(identities: string[], subject: string): boolean {
  const have = new Set(subject.split(/,\s*/).map((p) => p.trim()));
  return identities.some((id) => {
    if (id === '*') return true;
    const m = /^x509\.subject:\s*(.+)$/.exec(id);
    return !!m && m[1]!.split(/,\s*/).every((p) => have.has(p.trim()));
  });
}
