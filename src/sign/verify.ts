import { decodeBase64, verifyBytes } from './crypto.js';
import { describeRule, matchIdentity } from './identity.js';
import { parsePayload } from './payload.js';
import { BundleError, parseBundle, parseStatement } from './bundle.js';
import { defaultVerificationCache, VerificationCache, type SignatureCheck } from './cache.js';
import type {
  ImageIdentity,
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
export function checkSignature(image: ImageIdentity, c: SignatureCandidate, key: TrustedKey, cache: VerificationCache = defaultVerificationCache): SignatureCheck {
  const k = VerificationCache.key(image.digest, c.id, key.fingerprint);
  let v = cache.get(k);
  if (!v) {
    v = checkWithKey(c, key);
    cache.set(k, v);
  }
  return v;
}

function verdict(c: SignatureCandidate, accepted: boolean, reason: string, extra: Partial<SignatureVerdict> = {}): SignatureVerdict {
  return { where: c.where, kind: c.kind, accepted, reason, ...extra };
}

/** Judges one signature against keys and an identity rule; the reason names the first thing that failed. */
export function judgeSignature(
  image: ImageIdentity,
  c: SignatureCandidate,
  req: Extract<TrustRequirement, { type: 'sigstoreSigned' }>,
  cache: VerificationCache = defaultVerificationCache,
): SignatureVerdict {
  if (c.problem) return verdict(c, false, c.problem);
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
    return verdict(c, false, n === 1 ? `signed by another key, not ${keyLabel(req.keys[0]!)}` : `signed by another key, none of the ${n} keys tried`);
  }
  const key = keyLabel(found.key);
  if ('payloadError' in found.check) return verdict(c, false, `signed by ${key}, but its payload is not an image signature: ${found.check.payloadError}`, { key });
  const payload = found.check.payload;
  if (payload.manifestDigest !== image.digest) {
    return verdict(c, false, `signature over another digest: signed ${payload.manifestDigest}, this image is ${image.digest}`, { key, payload });
  }
  const m = matchIdentity(req.signedIdentity, payload.dockerReference, image.dockerReference);
  if (!m.ok) return verdict(c, false, `signed by ${key} over this digest, but ${m.reason}`, { key, payload });
  return verdict(c, true, `signed by ${key}, ${m.reason} (${describeRule(req.signedIdentity)})`, { key, payload });
}

/** Describes a requirement in the words of containers-policy.json. */
export function describeRequirement(req: TrustRequirement): string {
  if (req.type !== 'sigstoreSigned') return req.type;
  return `sigstoreSigned by ${req.keys.map((k) => k.name).join(', ') || 'no keys'} with ${describeRule(req.signedIdentity)}`;
}

/** Checks the image's signatures against one requirement; pure, and cheap when the cache is warm. */
export function verifyRequirement(image: ImageIdentity, candidates: SignatureCandidate[], req: TrustRequirement, opts: VerifyOptions = {}): VerificationResult {
  const requirement = describeRequirement(req);
  if (req.type === 'insecureAcceptAnything') {
    return { requirement, satisfied: true, summary: 'accepted without looking at signatures (insecureAcceptAnything)', keysTried: [], signatures: [] };
  }
  if (req.type === 'reject') {
    return { requirement, satisfied: false, summary: 'refused by a reject requirement', keysTried: [], signatures: [] };
  }
  const keysTried = req.keys.map(keyLabel);
  if (req.keys.length === 0) return { requirement, satisfied: false, summary: 'the requirement names no keys', keysTried, signatures: [] };
  const signatures = candidates.map((c) => judgeSignature(image, c, req, opts.cache));
  const ok = signatures.find((s) => s.accepted);
  let summary: string;
  if (ok) summary = `satisfied by ${ok.where}: ${ok.reason}`;
  else if (signatures.length === 0) summary = `no signatures found for ${image.digest}${opts.searched?.length ? ` (looked at ${opts.searched.join(', ')})` : ''}`;
  else summary = `none of ${signatures.length} signature${signatures.length === 1 ? '' : 's'} satisfies it: ${signatures.map((s) => `${s.where}: ${s.reason}`).join('; ')}`;
  return { requirement, satisfied: !!ok, summary, keysTried, signatures };
}

/** Checks a whole requirement list: every requirement must be satisfied (an empty list allows nothing). */
export function evaluateRequirements(image: ImageIdentity, candidates: SignatureCandidate[], reqs: TrustRequirement[], opts: VerifyOptions & { scope?: string } = {}): PolicyDecision {
  const results = reqs.map((r) => verifyRequirement(image, candidates, r, opts));
  const failed = results.find((r) => !r.satisfied);
  const where = opts.scope ? ` (policy scope ${opts.scope})` : '';
  let summary: string;
  if (reqs.length === 0) summary = `refused: the policy's requirement list is empty${where}`;
  else if (failed) summary = `refused by requirement "${failed.requirement}"${where}: ${failed.summary}${failed.keysTried.length ? `; keys tried: ${failed.keysTried.join(', ')}` : ''}`;
  else summary = `allowed${where}: ${results.map((r) => r.summary).join('; ')}`;
  const d: PolicyDecision = { allowed: reqs.length > 0 && !failed, results, summary };
  if (opts.scope) d.scope = opts.scope;
  return d;
}
