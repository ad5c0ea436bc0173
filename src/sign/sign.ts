import { Readable } from 'node:stream';
import { sign as cryptoSign, createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { digestOf, digestTag, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { parseManifest } from '../oci/manifest.js';
import { EMPTY_JSON, MediaType } from '../oci/mediatypes.js';
import { formatReference } from '../oci/reference.js';
import { openDestination, openSource, type TransportOptions } from '../transport/index.js';
import {
  parseTransportReference,
  type ImageDestination,
  type ImageSource,
  type RawManifest,
} from '../transport/transport.js';
import { parseDockerReference } from '../transport/docker.js';
import { buildPayload } from './payload.js';
import { buildBundle, buildStatement, pae } from './bundle.js';
import { signatureTag, MAX_SIGNATURE_BYTES } from './discover.js';
import { decodeBase64, keyFingerprint, trustedKeyFromPem, verifyBytes } from './crypto.js';
import {
  BUNDLE_MEDIA_TYPE,
  COSIGN_SIGN_PREDICATE,
  INTOTO_PAYLOAD_TYPE,
  SIGNATURE_ANNOTATION,
  SIMPLE_SIGNING_MEDIA_TYPE,
} from './types.js';

/** How to sign. */
export interface SignOptions {
  /** The name the signature binds; default: the docker reference as given (`host/repo:tag`, or `host/repo@digest`). */
  identity?: string;
  /** Write cosign 3's form (a sigstore bundle referrer) instead of the `.sig` tag. */
  bundle?: boolean;
  /**
   * For an index: sign every child manifest too, with the same name, as cosign's `--recursive` does.
   * containers/image (skopeo, podman) checks the signature of the platform instance it pulls, not the index's.
   */
  recursive?: boolean;
  transport?: TransportOptions;
}

/** What signing wrote. */
export interface SignResult {
  /** The signed manifest's digest. */
  digest: Digest;
  /** The name the signature binds (undefined only for a bundle without one). */
  identity: string;
  /** `tag sha256-….sig` or `referrer sha256:…`. */
  written: string;
  /** False when an identical signature was already there (nothing written). */
  added: boolean;
  keyFingerprint: string;
  /** With `recursive`, what was written for each child of an index (children of children included). */
  children?: { digest: Digest; written: string; added: boolean }[];
  /** With `recursive`, children the index lists that this place does not hold (a partial mirror): not signed. */
  missing?: Digest[];
}

/** The largest index tree `recursive` walks: an index lists a few platforms; more is not an image to sign. */
const MAX_CHILDREN = 1024;

/** The name a signature binds by default: the docker reference with its tag, or by digest when it has no tag. */
export function defaultIdentity(imageRef: string, digest: Digest): string | undefined {
  const { transport, rest } = parseTransportReference(imageRef);
  if (transport !== 'docker') return undefined;
  const ref = parseDockerReference(rest);
  return ref.tag
    ? formatReference({ registry: ref.registry, repository: ref.repository, tag: ref.tag })
    : formatReference({ registry: ref.registry, repository: ref.repository, digest });
}

function signBytes(key: KeyObject, data: Uint8Array): Buffer {
  return cryptoSign('sha256', data, { key, dsaEncoding: 'der' });
}

async function putBytes(dst: ImageDestination, d: Descriptor, bytes: Buffer): Promise<void> {
  if (await dst.hasBlob(d)) return;
  await dst.putBlob(d, Readable.from([bytes]));
}

const describe = (mediaType: string, bytes: Buffer): Descriptor => ({
  mediaType,
  digest: digestOf(bytes),
  size: bytes.length,
});

// cosign's signature image config: zero times, one history entry and diff_id per payload layer.
function sigConfig(layers: Descriptor[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: layers.map(() => ({ created: '0001-01-01T00:00:00Z' })),
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
}

async function writeSimpleSignature(
  src: ImageSource,
  dst: ImageDestination,
  digest: Digest,
  identity: string,
  key: KeyObject,
): Promise<{ written: string; added: boolean }> {
  const payload = buildPayload(identity, digest);
  const signature = signBytes(key, payload).toString('base64');
  const tag = signatureTag(digest);
  let layers: Descriptor[] = [];
  const existing = await src.getTaggedManifest?.(tag);
  if (existing) {
    if (existing.bytes.length > MAX_SIGNATURE_BYTES)
      throw new Error(
        `tag ${tag} holds a ${existing.bytes.length}-byte manifest: not a signature manifest Sluice will extend`,
      );
    const m = parseManifest(existing.bytes, existing.mediaType);
    if (m.kind !== 'image') throw new Error(`tag ${tag} holds an index, not cosign's signature manifest`);
    layers = m.layers;
  }
  const layer: Descriptor = {
    ...describe(SIMPLE_SIGNING_MEDIA_TYPE, payload),
    annotations: { [SIGNATURE_ANNOTATION]: signature },
  };
  // ECDSA signatures differ every time, so a duplicate is the same payload already signed by this key
  // (cosign's dupe detector skips it the same way): signing twice does not grow the manifest.
  const self = trustedKeyFromPem(
    createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString(),
    'signing key',
  );
  const dupe = layers.some((l) => {
    const old = l.annotations?.[SIGNATURE_ANNOTATION];
    const bytes = old === undefined ? undefined : decodeBase64(old);
    return l.digest === layer.digest && bytes !== undefined && verifyBytes(self, payload, bytes);
  });
  if (dupe) return { written: `tag ${tag}`, added: false };
  layers = [...layers, layer];
  const config = sigConfig(layers);
  const configDesc = describe(MediaType.OciConfig, config);
  await putBytes(dst, layer, payload);
  await putBytes(dst, configDesc, config);
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: configDesc, layers }),
  );
  await dst.putManifest({ bytes: manifest, mediaType: MediaType.OciManifest, digest: digestOf(manifest) }, tag);
  return { written: `tag ${tag}`, added: true };
}

async function writeBundleSignature(
  src: ImageSource,
  dst: ImageDestination,
  subject: Descriptor,
  identity: string | undefined,
  key: KeyObject,
): Promise<{ written: string; added: boolean }> {
  const statement = buildStatement(subject.digest, identity);
  const sig = signBytes(key, pae(INTOTO_PAYLOAD_TYPE, statement));
  const der = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const bundle = buildBundle(statement, sig, createHash('sha256').update(der).digest('base64'));
  const layer: Descriptor = {
    ...describe(BUNDLE_MEDIA_TYPE, bundle),
    annotations: { 'org.opencontainers.image.title': `${digestTag(digestOf(bundle))}.sigstore.json` },
  };
  const empty = Buffer.from(EMPTY_JSON);
  const configDesc = describe(MediaType.OciEmpty, empty);
  const annotations = {
    'dev.sigstore.bundle.content': 'dsse-envelope',
    'dev.sigstore.bundle.predicateType': COSIGN_SIGN_PREDICATE,
    'org.opencontainers.image.created': new Date().toISOString(),
  };
  const manifestDoc = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: BUNDLE_MEDIA_TYPE,
    config: configDesc,
    layers: [layer],
    subject,
    annotations,
  };
  const bytes = Buffer.from(JSON.stringify(manifestDoc));
  const digest = digestOf(bytes);
  await putBytes(dst, layer, bundle);
  await putBytes(dst, configDesc, empty);
  await dst.putManifest({ bytes, mediaType: MediaType.OciManifest, digest });
  // A registry without the referrers API needs the referrers tag schema kept by the client (as cosign does).
  if (dst.location && src.listReferrers) {
    const listed = await src.listReferrers(subject.digest);
    if (!listed.some((d) => d.digest === digest)) {
      const tag = digestTag(subject.digest);
      const prior = await src.getTaggedManifest?.(tag);
      let manifests: Descriptor[] = [];
      if (prior) {
        const m = parseManifest(prior.bytes, prior.mediaType);
        if (m.kind === 'index') manifests = m.manifests;
      }
      manifests = [
        ...manifests,
        { mediaType: MediaType.OciManifest, digest, size: bytes.length, artifactType: BUNDLE_MEDIA_TYPE, annotations },
      ];
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }));
      await dst.putManifest({ bytes: index, mediaType: MediaType.OciIndex, digest: digestOf(index) }, tag);
    }
  }
  return { written: `referrer ${digest}`, added: true };
}

/** Every manifest below an index (children of children too) that `src` holds, and the digests it lacks. */
async function childrenOf(src: ImageSource, top: RawManifest): Promise<{ children: RawManifest[]; missing: Digest[] }> {
  const children: RawManifest[] = [];
  const missing: Digest[] = [];
  const seen = new Set<string>([top.digest]);
  let queue = [top];
  while (queue.length > 0) {
    const next: RawManifest[] = [];
    for (const m of queue) {
      const parsed = parseManifest(m.bytes, m.mediaType);
      if (parsed.kind !== 'index') continue;
      for (const d of parsed.manifests) {
        if (seen.has(d.digest)) continue;
        seen.add(d.digest);
        if (seen.size > MAX_CHILDREN)
          throw new Error(
            `${src.description} lists more than ${MAX_CHILDREN} manifests below its index: not signed recursively`,
          );
        let child: RawManifest;
        try {
          child = await src.getManifest(d.digest as Digest);
        } catch {
          missing.push(d.digest as Digest);
          continue;
        }
        children.push(child);
        next.push(child);
      }
    }
    queue = next;
  }
  return { children, missing };
}

/**
 * Signs the image `imageRef` names (any transport that can be read and written: docker://, oci:, …)
 * with `key`: cosign's simple signing under `sha256-<hex>.sig` (layers appended, as cosign does),
 * or with `bundle` a sigstore bundle referrer as cosign 3 writes it.
 */
export async function signImage(imageRef: string, key: KeyObject, opts: SignOptions = {}): Promise<SignResult> {
  const src = await openSource(imageRef, opts.transport);
  try {
    const top = await src.getManifest();
    const identity = opts.identity ?? defaultIdentity(imageRef, top.digest);
    if (!identity && !opts.bundle) {
      throw new Error(
        `${src.description} has no registry name: say which name the signature binds with --identity NAME`,
      );
    }
    const dst = await openDestination(imageRef, opts.transport);
    try {
      const signOne = (m: RawManifest) =>
        opts.bundle
          ? writeBundleSignature(
              src,
              dst,
              { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length },
              identity,
              key,
            )
          : writeSimpleSignature(src, dst, m.digest, identity!, key);
      const w = await signOne(top);
      const result: SignResult = {
        digest: top.digest,
        identity: identity ?? '',
        ...w,
        keyFingerprint: keyFingerprint(createPublicKey(key)),
      };
      if (opts.recursive) {
        const { children, missing } = await childrenOf(src, top);
        result.children = [];
        for (const child of children) result.children.push({ digest: child.digest, ...(await signOne(child)) });
        if (missing.length) result.missing = missing;
      }
      await dst.commit();
      return result;
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}
