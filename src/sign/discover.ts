import type { Readable } from 'node:stream';
import { digestOf, digestTag, Digester, isDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { parseManifest, type Manifest } from '../oci/manifest.js';
import type { ImageSource, RawManifest } from '../transport/transport.js';
import { COSE_MEDIA_TYPE, JWS_MEDIA_TYPE, NOTATION_ARTIFACT_TYPE } from './notation.js';
import { CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION, REKOR_BUNDLE_ANNOTATION } from './keyless.js';
import {
  BUNDLE_MEDIA_TYPE,
  SIGNATURE_ANNOTATION,
  SIMPLE_SIGNING_MEDIA_TYPE,
  type SignatureCandidate,
} from './types.js';

/** Largest signature manifest, payload or bundle read: simple-signing payloads are a few hundred bytes, bundles a few KiB. */
export const MAX_SIGNATURE_BYTES = 1024 * 1024;
// Every manifest discovery reads is bounded at the transport: refused by its declared size, and never read past the bound.
const BOUND = { maxBytes: MAX_SIGNATURE_BYTES };
/** Most signatures read from one `.sig` manifest or referrers list; more are reported, not read. */
export const MAX_SIGNATURES = 256;

/** The signatures found next to an image, and where discovery looked. */
export interface Discovery {
  candidates: SignatureCandidate[];
  searched: string[];
}

/** `sha256-<hex>.sig`: where cosign's simple signatures of `digest` live. */
export function signatureTag(digest: Digest): string {
  return `${digestTag(digest)}.sig`;
}

/** Reads a blob of at most `max` bytes and checks its digest; throws with a one-line reason otherwise. */
export async function readBoundedBlob(source: ImageSource, d: Descriptor, max = MAX_SIGNATURE_BYTES): Promise<Buffer> {
  if (!Number.isSafeInteger(d.size) || d.size < 0 || d.size > max)
    throw new Error(`blob ${d.digest} claims ${d.size} bytes, over the ${max}-byte bound`);
  let stream: Readable;
  try {
    stream = await source.getBlob(d);
  } catch (e) {
    throw new Error(`blob ${d.digest} cannot be read: ${(e as Error).message}`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  const hash = new Digester(d.digest.startsWith('sha512:') ? 'sha512' : 'sha256');
  try {
    for await (const chunk of stream) {
      const b = chunk as Buffer;
      total += b.length;
      if (total > d.size) throw new Error(`blob ${d.digest} is longer than its descriptor's ${d.size} bytes`);
      hash.update(b);
      chunks.push(b);
    }
  } finally {
    stream.destroy();
  }
  if (total !== d.size) throw new Error(`blob ${d.digest} has ${total} bytes, its descriptor says ${d.size}`);
  if (hash.digest() !== d.digest) throw new Error(`blob ${d.digest} does not match its digest`);
  return Buffer.concat(chunks);
}

// v0.3 has its own media type; v0.1 and v0.2 carry the version as a parameter (`…bundle+json;version=0.2`).
const isBundleType = (t: string): boolean =>
  t === BUNDLE_MEDIA_TYPE || t.startsWith('application/vnd.dev.sigstore.bundle+json');

function problem(kind: SignatureCandidate['kind'], where: string, message: string): SignatureCandidate {
  return { kind, where, id: digestOf(`problem\n${where}\n${message}`), payload: new Uint8Array(0), problem: message };
}

function parseSmallManifest(m: RawManifest, what: string): Manifest {
  if (m.bytes.length > MAX_SIGNATURE_BYTES)
    throw new Error(`${what} is ${m.bytes.length} bytes, over the ${MAX_SIGNATURE_BYTES}-byte bound`);
  return parseManifest(m.bytes, m.mediaType);
}

// Turns the signature layers of one manifest (a `.sig` manifest or a referrer) into candidates.
async function candidatesOf(
  source: ImageSource,
  m: Manifest,
  where: string,
  quiet = false,
): Promise<SignatureCandidate[]> {
  if (m.kind !== 'image')
    return quiet ? [] : [problem('simple-signing', where, 'not an image manifest, so it holds no signatures')];
  const out: SignatureCandidate[] = [];
  const notation = m.artifactType === NOTATION_ARTIFACT_TYPE || m.config.mediaType === NOTATION_ARTIFACT_TYPE;
  const layers = m.layers.filter((l) =>
    notation
      ? l.mediaType === JWS_MEDIA_TYPE || l.mediaType === COSE_MEDIA_TYPE
      : l.mediaType === SIMPLE_SIGNING_MEDIA_TYPE || isBundleType(l.mediaType),
  );
  for (const [i, layer] of layers.entries()) {
    const kind = notation ? 'notation' : isBundleType(layer.mediaType) ? 'bundle' : 'simple-signing';
    const at = layers.length > 1 ? `${where}, layer ${i + 1}` : where;
    if (i >= MAX_SIGNATURES) {
      out.push(
        problem(kind, where, `${layers.length - MAX_SIGNATURES} more signatures not read (over ${MAX_SIGNATURES})`),
      );
      break;
    }
    try {
      const payload = await readBoundedBlob(source, layer);
      if (kind === 'notation') {
        out.push({ kind, where: at, id: layer.digest, payload, mediaType: layer.mediaType });
      } else if (kind === 'bundle') {
        out.push({ kind, where: at, id: layer.digest, payload });
      } else {
        const a = layer.annotations ?? {};
        const signature = a[SIGNATURE_ANNOTATION];
        const keyless = [a[CERTIFICATE_ANNOTATION], a[CHAIN_ANNOTATION], a[REKOR_BUNDLE_ANNOTATION]];
        // The id covers every annotation a verdict depends on: a keyless verdict depends on all four.
        const id = keyless.some((x) => x !== undefined)
          ? digestOf(`${layer.digest}\n${signature ?? ''}\n${keyless.map((x) => x ?? '').join('\n')}`)
          : digestOf(`${layer.digest}\n${signature ?? ''}`);
        const c: SignatureCandidate = { kind, where: at, id, payload };
        if (signature !== undefined) c.signature = signature;
        if (a[CERTIFICATE_ANNOTATION] !== undefined) c.certificate = a[CERTIFICATE_ANNOTATION];
        if (a[CHAIN_ANNOTATION] !== undefined) c.chain = a[CHAIN_ANNOTATION];
        if (a[REKOR_BUNDLE_ANNOTATION] !== undefined) c.rekorBundle = a[REKOR_BUNDLE_ANNOTATION];
        out.push(c);
      }
    } catch (e) {
      out.push(problem(kind, at, (e as Error).message));
    }
  }
  return out;
}

/**
 * Finds an image's signatures all three ways: cosign's `sha256-<hex>.sig` tag, the referrers API
 * (which the registry transport falls back from to the tag schema), and the `sha256-<hex>` referrers
 * tag itself. Every read is bounded; what cannot be read becomes a candidate with a problem, so the
 * report says so instead of hiding it.
 */
export async function findSignatures(source: ImageSource, digest: Digest): Promise<Discovery> {
  const candidates: SignatureCandidate[] = [];
  const searched: string[] = [];
  const sigTag = signatureTag(digest);
  if (source.getTaggedManifest) {
    searched.push(`tag ${sigTag}`);
    try {
      const sig = await source.getTaggedManifest(sigTag, BOUND);
      if (sig)
        candidates.push(...(await candidatesOf(source, parseSmallManifest(sig, `tag ${sigTag}`), `tag ${sigTag}`)));
    } catch (e) {
      candidates.push(problem('simple-signing', `tag ${sigTag}`, (e as Error).message));
    }
  }
  const referrers = new Map<string, Descriptor>();
  if (source.listReferrers) {
    searched.push(`referrers of ${digest}`);
    try {
      for (const d of await source.listReferrers(digest, BOUND)) referrers.set(d.digest, d);
    } catch (e) {
      candidates.push(problem('bundle', `referrers of ${digest}`, `cannot list referrers: ${(e as Error).message}`));
    }
  }
  if (source.getTaggedManifest) {
    const fallback = digestTag(digest);
    searched.push(`tag ${fallback}`);
    try {
      const idx = await source.getTaggedManifest(fallback, BOUND);
      if (idx) {
        const m = parseSmallManifest(idx, `tag ${fallback}`);
        if (m.kind === 'index') for (const d of m.manifests) if (!referrers.has(d.digest)) referrers.set(d.digest, d);
      }
    } catch (e) {
      candidates.push(problem('bundle', `tag ${fallback}`, (e as Error).message));
    }
  }
  let n = 0;
  for (const d of referrers.values()) {
    // Only signature-like referrers are fetched; an SBOM or attestation of another type is not a signature.
    const t = d.artifactType;
    if (t && !isBundleType(t) && t !== NOTATION_ARTIFACT_TYPE && !t.startsWith('application/vnd.dev.cosign')) continue;
    const where = `referrer ${d.digest}`;
    if (++n > MAX_SIGNATURES) {
      candidates.push(problem('bundle', where, `more than ${MAX_SIGNATURES} referrers: the rest were not read`));
      break;
    }
    try {
      if (!isDigest(d.digest)) throw new Error('invalid digest');
      if (d.size > MAX_SIGNATURE_BYTES)
        throw new Error(`manifest claims ${d.size} bytes, over the ${MAX_SIGNATURE_BYTES}-byte bound`);
      const m = parseSmallManifest(await source.getManifest(d.digest, BOUND), where);
      // A fallback tag is a plain index anyone may write: a referrer counts only if it names this image.
      if (m.subject?.digest !== digest) {
        candidates.push(problem('bundle', where, `its subject is ${m.subject?.digest ?? 'missing'}, not ${digest}`));
        continue;
      }
      candidates.push(...(await candidatesOf(source, m, where, true)));
    } catch (e) {
      candidates.push(problem('bundle', where, (e as Error).message));
    }
  }
  return { candidates, searched };
}
