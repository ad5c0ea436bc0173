import { isDigest, type Digest } from './digest.js';
import type { Descriptor } from './descriptor.js';
import { MediaType, isIndexMediaType } from './mediatypes.js';
import type { Platform } from './platform.js';

/** An image manifest (OCI or Docker schema 2), parsed from its exact bytes. */
export interface ImageManifest {
  kind: 'image';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** An image index (OCI index or Docker manifest list), parsed from its exact bytes. */
export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** Either kind of manifest. */
export type Manifest = ImageManifest | ImageIndex;

/** Thrown when manifest bytes are not a valid manifest; the message says what is wrong. */
export class ManifestError extends Error {}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkAnnotations(v: unknown, where: string): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v) || Object.values(v).some((x) => typeof x !== 'string')) {
    throw new ManifestError(`${where}.annotations must be a map of strings`);
  }
  return v as Record<string, string>;
}

function checkPlatform(v: unknown, where: string): Platform | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v) || typeof v.os !== 'string' || typeof v.architecture !== 'string') {
    throw new ManifestError(`${where}.platform needs string "os" and "architecture"`);
  }
  if (v.variant !== undefined && typeof v.variant !== 'string')
    throw new ManifestError(`${where}.platform.variant must be a string`);
  return v as unknown as Platform;
}

/** Validates one descriptor; `where` names it in the error message. */
export function parseDescriptor(v: unknown, where: string): Descriptor {
  if (!isObject(v)) throw new ManifestError(`${where} must be an object`);
  if (typeof v.mediaType !== 'string' || v.mediaType.length === 0)
    throw new ManifestError(`${where}.mediaType must be a string`);
  if (typeof v.digest !== 'string' || !isDigest(v.digest))
    throw new ManifestError(`${where}.digest is not a valid digest`);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) {
    throw new ManifestError(`${where}.size must be a non-negative integer`);
  }
  if (v.urls !== undefined && (!Array.isArray(v.urls) || v.urls.some((u) => typeof u !== 'string'))) {
    throw new ManifestError(`${where}.urls must be a list of strings`);
  }
  if (v.artifactType !== undefined && typeof v.artifactType !== 'string')
    throw new ManifestError(`${where}.artifactType must be a string`);
  const d: Descriptor = {
    ...(v as object),
    mediaType: v.mediaType,
    digest: v.digest as Digest,
    size: v.size,
  } as Descriptor;
  checkAnnotations(v.annotations, where);
  checkPlatform(v.platform, where);
  return d;
}

/**
 * Parses manifest bytes. `declaredType` is the Content-Type a client sent (if any); it must agree
 * with the document's own mediaType when that is present. OCI manifests may omit mediaType (umoci does).
 */
export function parseManifest(bytes: Uint8Array, declaredType?: string): Manifest {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new ManifestError(`manifest is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(doc)) throw new ManifestError('manifest must be a JSON object');
  const inner = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (doc.mediaType !== undefined && inner === undefined) throw new ManifestError('mediaType must be a string');
  const declared = declaredType?.split(';')[0]?.trim();
  if (
    inner &&
    declared &&
    declared !== inner &&
    declared !== 'application/json' &&
    declared !== 'application/octet-stream'
  ) {
    throw new ManifestError(`Content-Type ${declared} does not match the manifest's mediaType ${inner}`);
  }
  let mediaType =
    inner ??
    (declared && declared !== 'application/json' && declared !== 'application/octet-stream' ? declared : undefined);
  if (!mediaType) mediaType = Array.isArray(doc.manifests) ? MediaType.OciIndex : MediaType.OciManifest;

  if (doc.schemaVersion !== 2) {
    if (
      mediaType === MediaType.DockerSchema1 ||
      mediaType === MediaType.DockerSchema1Signed ||
      doc.schemaVersion === 1
    ) {
      throw new ManifestError('Docker schema 1 manifests are not supported');
    }
    throw new ManifestError('schemaVersion must be 2');
  }
  const annotations = checkAnnotations(doc.annotations, 'manifest');
  const subject = doc.subject === undefined ? undefined : parseDescriptor(doc.subject, 'subject');
  if (doc.artifactType !== undefined && typeof doc.artifactType !== 'string')
    throw new ManifestError('artifactType must be a string');
  const artifactType = doc.artifactType as string | undefined;

  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw new ManifestError('index needs a "manifests" list');
    const manifests = doc.manifests.map((m, i) => {
      const d = parseDescriptor(m, `manifests[${i}]`);
      return d;
    });
    const idx: ImageIndex = { kind: 'index', mediaType, manifests };
    if (subject) idx.subject = subject;
    if (artifactType) idx.artifactType = artifactType;
    if (annotations) idx.annotations = annotations;
    return idx;
  }
  if (mediaType !== MediaType.OciManifest && mediaType !== MediaType.DockerManifest) {
    throw new ManifestError(`unsupported manifest media type ${mediaType}`);
  }
  if (doc.manifests !== undefined) throw new ManifestError('an image manifest cannot carry "manifests"');
  const config = parseDescriptor(doc.config, 'config');
  if (!Array.isArray(doc.layers)) throw new ManifestError('manifest needs a "layers" list');
  const layers = doc.layers.map((l, i) => parseDescriptor(l, `layers[${i}]`));
  const m: ImageManifest = { kind: 'image', mediaType, config, layers };
  if (subject) m.subject = subject;
  if (artifactType) m.artifactType = artifactType;
  if (annotations) m.annotations = annotations;
  return m;
}

/** The artifact type a referrers listing reports: artifactType, else the config's media type. */
export function effectiveArtifactType(m: Manifest): string | undefined {
  if (m.artifactType) return m.artifactType;
  return m.kind === 'image' ? m.config.mediaType : undefined;
}

/** Blobs an image manifest needs in the same repository (config and layers, foreign layers excluded). */
export function referencedBlobs(m: ImageManifest): Descriptor[] {
  return [m.config, ...m.layers].filter(
    (d) =>
      d.mediaType !== MediaType.DockerForeignLayerGzip &&
      !(d.urls && d.urls.length > 0 && d.mediaType.includes('foreign')),
  );
}
