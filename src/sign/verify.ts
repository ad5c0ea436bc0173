import { decodeBase64, verifyBytes } from './crypto.js';
import { describeRule, matchIdentity } from './identity.js';
import { parsePayload } from './payload.js';
import { BundleError, parseBundle, parseStatement } from './bundle.js';
import { defaultVerificationCache, VerificationCache, type SignatureCheck } from './cache.js';
import { verifyKeyless, type KeylessCheck } from './keyless.js';
import { describeKeylessIdentity, describeSigner, matchKeylessIdentity } from './fulcio.js';
import { matchTrustedIdentity, verifyNotation, type NotationCheck } from './notation.js';
import { describeEnforcement } from './notation-policy.js';
import type {
  ImageIdentity,
  KeylessTrust,
  NotationRequirement,
  PolicyDecision,
  SignatureCandidate,
  SignatureVerdict,
  TrustedKey,
  TrustRequirement,
  VerificationResult,
} from './types.js';

// Verification is pure: every byte it looks at was fetched (and bounded) by discover.ts.

/** Options for verification. */
export interface VerifyOptions {
  cache?: VerificationCache;
  /** The time certificates and expiries are judged at (Unix ms); now by default. Keyless signatures use the log's time. */
  now?: number;
  /** Where discovery looked, for the "none found" message. */
  searched?: string[];
}

function keyLabel(k: TrustedKey): string {
  return `${k.name} (${k.fingerprint})`;
}

// Checks one candidate with one key: crypto first, then the payload, as containers/image orders it.
function checkWithKey(c: SignatureCandidate, key: TrustedKey): SignatureCheck {
  if (c.kind === 'simple-signing') {
    const sig = c.signature === undefined ? undefined : decodeBase64(c.signature);
    if (!sig || !verifyBytes(key, c.payload, sig)) return { signed: false };
    try {
      return { signed: true, payload: parsePayload(c.payload) };
    } catch (e) {
      return { signed: true, payloadError: (e as Error).message };
    }
  }
  const b = parseBundle(c.payload);
  if (!b.signatures.some((s) => verifyBytes(key, b.signed, s))) return { signed: false };
  try {
    return { signed: true, payload: parseStatement(b.payload) };
  } catch (e) {
    return { signed: true, payloadError: (e as Error).message };
  }
}

/** The check of `c` with `key`, from the cache when this manifest, signature and key were checked before. */
export function checkSignature(
  image: ImageIdentity,
  c: SignatureCandidate,
  key: TrustedKey,
  cache: VerificationCache = defaultVerificationCache,
): SignatureCheck {
  const k = VerificationCache.key(image.digest, c.id, key.fingerprint);
  // Key fingerprints, `keyless:` and `notation:` never collide, so what a fingerprint's entry holds is a key check.
  let v = cache.get(k) as SignatureCheck | undefined;
  if (!v) {
    v = checkWithKey(c, key);
    cache.set(k, v);
  }
  return v;
}

function verdict(
  c: SignatureCandidate,
  accepted: boolean,
  reason: string,
  extra: Partial<SignatureVerdict> = {},
): SignatureVerdict {
  return { where: c.where, kind: c.kind, accepted, reason, ...extra };
}

type SigstoreRequirement = Extract<TrustRequirement, { type: 'sigstoreSigned' }>;

/** The keyless check of `c` under `root`, from the cache when this manifest, signature and root were checked before. */
export function checkKeylessSignature(
  image: ImageIdentity,
  c: SignatureCandidate,
  root: KeylessTrust['roots'][number],
  cache = defaultVerificationCache,
): KeylessCheck {
  const k = VerificationCache.key(image.digest, c.id, `keyless:${root.fingerprint}`);
  let v = cache.get(k) as KeylessCheck | undefined;
  if (!v) {
    v = verifyKeyless(c, root);
    cache.set(k, v);
  }
  return v;
}

// A keyless signature: certificate and log proof under one of the roots, then the digest, the identity, the name.
function judgeKeyless(
  image: ImageIdentity,
  c: SignatureCandidate,
  req: SigstoreRequirement,
  trust: KeylessTrust,
  cache: VerificationCache,
): SignatureVerdict {
  let check: Extract<KeylessCheck, { signed: true }> | undefined;
  const failures: string[] = [];
  for (const root of trust.roots) {
    const v = checkKeylessSignature(image, c, root, cache);
    if (v.signed) {
      check = v;
      break;
    }
    failures.push(trust.roots.length > 1 ? `${root.name}: ${v.reason}` : v.reason);
  }
  if (!check) return verdict(c, false, `not a valid keyless signature: ${failures.join('; ') || 'no trusted roots'}`);
  const signer = describeSigner(check.identity);
  if ('payloadError' in check)
    return verdict(c, false, `signed by ${signer}, but its payload is not an image signature: ${check.payloadError}`, {
      signer,
    });
  const payload = check.payload;
  if (payload.manifestDigest !== image.digest) {
    return verdict(
      c,
      false,
      `signed by ${signer} over another digest: signed ${payload.manifestDigest}, this image is ${image.digest}`,
      { signer, payload },
    );
  }
  const who = check.identity;
  const misses = trust.identities.map((id) => ({ id, m: matchKeylessIdentity(id, who) }));
  if (!misses.some((x) => x.m.ok)) {
    const wants = misses
      .map((x) => `${describeKeylessIdentity(x.id)} (its ${x.m.ok ? '' : x.m.differs} differs)`)
      .join('; or ');
    return verdict(c, false, `signed by ${signer}, but the rule wants ${wants || 'an identity, and names none'}`, {
      signer,
      payload,
    });
  }
  const m = matchIdentity(req.signedIdentity, payload.dockerReference, image.dockerReference);
  if (!m.ok) return verdict(c, false, `signed by ${signer} over this digest, but ${m.reason}`, { signer, payload });
  return verdict(c, true, `signed keylessly by ${signer}, ${m.reason} (${describeRule(req.signedIdentity)})`, {
    signer,
    payload,
  });
}

// A signature with one of the keys.
function judgeWithKeys(
  image: ImageIdentity,
  c: SignatureCandidate,
  req: SigstoreRequirement,
  cache: VerificationCache,
): SignatureVerdict {
  if (c.kind === 'simple-signing' && (c.signature === undefined || !decodeBase64(c.signature))) {
    return verdict(c, false, 'its signature annotation is missing or not base64');
  }
  let found: { key: TrustedKey; check: Extract<SignatureCheck, { signed: true }> } | undefined;
  try {
    for (const key of req.keys) {
      const check = checkSignature(image, c, key, cache);
      if (check.signed) {
        found = { key, check };
        break;
      }
    }
  } catch (e) {
    if (e instanceof BundleError) return verdict(c, false, `unreadable bundle: ${e.message}`);
    throw e;
  }
  if (!found) {
    const n = req.keys.length;
    return verdict(
      c,
      false,
      n === 1
        ? `signed by another key, not ${keyLabel(req.keys[0]!)}`
        : `signed by another key, none of the ${n} keys tried`,
    );
  }
  const key = keyLabel(found.key);
  if ('payloadError' in found.check)
    return verdict(
      c,
      false,
      `signed by ${key}, but its payload is not an image signature: ${found.check.payloadError}`,
      { key },
    );
  const payload = found.check.payload;
  if (payload.manifestDigest !== image.digest) {
    return verdict(
      c,
      false,
      `signature over another digest: signed ${payload.manifestDigest}, this image is ${image.digest}`,
      { key, payload },
    );
  }
  const m = matchIdentity(req.signedIdentity, payload.dockerReference, image.dockerReference);
  if (!m.ok) return verdict(c, false, `signed by ${key} over this digest, but ${m.reason}`, { key, payload });
  return verdict(c, true, `signed by ${key}, ${m.reason} (${describeRule(req.signedIdentity)})`, { key, payload });
}

/**
 * Judges one signature against a requirement's keys and keyless identities: it is accepted when one of the
 * keys made it, or when it is a valid keyless signature by one of the identities. The reason names the first
 * thing that failed, from the route the signature itself takes (a certificate: keyless; none: the keys).
 */
export function judgeSignature(
  image: ImageIdentity,
  c: SignatureCandidate,
  req: SigstoreRequirement,
  cache: VerificationCache = defaultVerificationCache,
): SignatureVerdict {
  if (c.problem) return verdict(c, false, c.problem);
  const viaKeys = req.keys.length > 0 ? judgeWithKeys(image, c, req, cache) : undefined;
  if (viaKeys?.accepted || !req.keyless) return viaKeys ?? verdict(c, false, 'the requirement names no keys');
  const viaKeyless = judgeKeyless(image, c, req, req.keyless, cache);
  if (viaKeyless.accepted || !viaKeys) return viaKeyless;
  return viaKeyless.signer || c.certificate || c.kind === 'bundle' ? viaKeyless : viaKeys;
}

/** The notation check of `c` under `req`'s stores and level, cached per envelope, stores and level; redone past `notAfter`. */
function checkNotation(
  image: ImageIdentity,
  c: SignatureCandidate,
  req: NotationRequirement,
  now: number,
  cache: VerificationCache,
): NotationCheck {
  const e = req.enforcement;
  const level = e ? `:${e.authenticity},${e.authenticTimestamp},${e.expiry},${e.revocation}` : '';
  const k = VerificationCache.key(image.digest, c.id, `notation:${req.stores.map((s) => s.name).join(',')}${level}`);
  let v = cache.get(k) as NotationCheck | undefined;
  if (!v || (v.signed && v.notAfter < now)) {
    v = verifyNotation(c.payload, c.mediaType ?? '', req.stores, now, e);
    cache.set(k, v);
  }
  return v;
}

/**
 * Judges one notation envelope: integrity, trust store and time, then the signed digest (always enforced), then the
 * leaf's subject (authenticity: enforced unless the level only logs it). What was only logged is in the reason.
 */
export function judgeNotation(
  image: ImageIdentity,
  c: SignatureCandidate,
  req: NotationRequirement,
  now: number,
  cache = defaultVerificationCache,
): SignatureVerdict {
  if (c.problem) return verdict(c, false, c.problem);
  const v = checkNotation(image, c, req, now, cache);
  if (!v.signed) return verdict(c, false, `not a valid notation signature: ${v.reason}`);
  const signer = `${v.subject} (${v.store ? `trust store ${v.store}` : 'no trust store vouches for it'})`;
  if (v.targetDigest !== image.digest)
    return verdict(
      c,
      false,
      `signed by ${signer} over another digest: signed ${v.targetDigest}, this image is ${image.digest}`,
      { signer },
    );
  const logged = [...v.logged];
  if (!matchTrustedIdentity(req.identities, v.subject)) {
    const miss = `signed by ${signer}, but the rule trusts only ${req.identities.join(' | ') || 'no identities'}`;
    if ((req.enforcement?.authenticity ?? 'enforce') === 'enforce') return verdict(c, false, miss);
    if (req.enforcement?.authenticity === 'log') logged.push(`authenticity: ${miss}`);
  }
  const note = logged.length ? `; level ${req.level ?? 'custom'} only logs: ${logged.join('; ')}` : '';
  return verdict(c, true, `notation signature by ${signer}${note}`, { signer });
}

/** Describes a requirement in the words of containers-policy.json. */
export function describeRequirement(req: TrustRequirement): string {
  if (req.type === 'notationSigned') {
    const level = req.enforcement ? ` at level ${req.level ?? 'custom'} (${describeEnforcement(req.enforcement)})` : '';
    const stores = req.stores.map((s) => s.name).join(', ') || 'none';
    return `notation signature${req.name ? ` (${req.name})` : ''}${level} from trust store ${stores} by ${req.identities.join(' | ') || 'no identities'}`;
  }
  if (req.type !== 'sigstoreSigned') return req.type;
  const by: string[] = [];
  if (req.keys.length) by.push(req.keys.map((k) => k.name).join(', '));
  if (req.keyless) {
    const ids = req.keyless.identities.map(describeKeylessIdentity).join(' | ');
    by.push(`keyless (${req.keyless.roots.map((r) => r.name).join(', ')}) as ${ids || 'no identity'}`);
  }
  return `sigstoreSigned by ${by.join(' or ') || 'no keys'} with ${describeRule(req.signedIdentity)}`;
}

/** Checks the image's signatures against one requirement; pure, and cheap when the cache is warm. */
export function verifyRequirement(
  image: ImageIdentity,
  candidates: SignatureCandidate[],
  req: TrustRequirement,
  opts: VerifyOptions = {},
): VerificationResult {
  const requirement = describeRequirement(req);
  if (req.type === 'insecureAcceptAnything') {
    return {
      requirement,
      satisfied: true,
      summary: 'accepted without looking at signatures (insecureAcceptAnything)',
      keysTried: [],
      signatures: [],
    };
  }
  if (req.type === 'reject') {
    return { requirement, satisfied: false, summary: 'refused by a reject requirement', keysTried: [], signatures: [] };
  }
  if (req.type === 'notationSigned') {
    const now = opts.now ?? Date.now();
    const signatures = candidates
      .filter((c) => c.kind === 'notation')
      .map((c) => judgeNotation(image, c, req, now, opts.cache));
    return summarize(
      requirement,
      signatures,
      image,
      opts,
      req.stores.map((s) => `trust store ${s.name}`),
      'notation signatures',
    );
  }
  const keysTried = [...req.keys.map(keyLabel), ...(req.keyless?.roots.map((r) => `keyless under ${r.name}`) ?? [])];
  if (req.keys.length === 0 && !req.keyless)
    return { requirement, satisfied: false, summary: 'the requirement names no keys', keysTried, signatures: [] };
  const signatures = candidates
    .filter((c) => c.kind !== 'notation')
    .map((c) => judgeSignature(image, c, req, opts.cache));
  return summarize(requirement, signatures, image, opts, keysTried, 'signatures');
}

function summarize(
  requirement: string,
  signatures: SignatureVerdict[],
  image: ImageIdentity,
  opts: VerifyOptions,
  keysTried: string[],
  what: string,
): VerificationResult {
  const ok = signatures.find((s) => s.accepted);
  let summary: string;
  if (ok) summary = `satisfied by ${ok.where}: ${ok.reason}`;
  else if (signatures.length === 0)
    summary = `no ${what} found for ${image.digest}${opts.searched?.length ? ` (looked at ${opts.searched.join(', ')})` : ''}`;
  else
    summary = `none of ${signatures.length} signature${signatures.length === 1 ? '' : 's'} satisfies it: ${signatures.map((s) => `${s.where}: ${s.reason}`).join('; ')}`;
  return { requirement, satisfied: !!ok, summary, keysTried, signatures };
}

/** Checks a whole requirement list: every requirement must be satisfied (an empty list allows nothing). */
export function evaluateRequirements(
  image: ImageIdentity,
  candidates: SignatureCandidate[],
  reqs: TrustRequirement[],
  opts: VerifyOptions & { scope?: string } = {},
): PolicyDecision {
  const results = reqs.map((r) => verifyRequirement(image, candidates, r, opts));
  const failed = results.find((r) => !r.satisfied);
  const where = opts.scope ? ` (policy scope ${opts.scope})` : '';
  let summary: string;
  if (reqs.length === 0) summary = `refused: the policy's requirement list is empty${where}`;
  else if (failed)
    summary = `refused by requirement "${failed.requirement}"${where}: ${failed.summary}${failed.keysTried.length ? `; keys tried: ${failed.keysTried.join(', ')}` : ''}`;
  else summary = `allowed${where}: ${results.map((r) => r.summary).join('; ')}`;
  const d: PolicyDecision = { allowed: reqs.length > 0 && !failed, results, summary };
  if (opts.scope) d.scope = opts.scope;
  return d;
}
