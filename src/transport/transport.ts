import type { Readable } from 'node:stream';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { ReadLimit } from './bounded.js';

/** Manifest bytes exactly as stored at a source, with their media type and digest. */
export interface RawManifest {
  bytes: Buffer;
  mediaType: string;
  digest: Digest;
}

/** Where a registry transport points: lets the copy engine mount blobs within one registry. */
export interface RegistryLocation {
  /** `host[:port]` as the client connects to it. */
  registry: string;
  repository: string;
}

/** A place an image can be read from (registry, layout directory, archive, daemon). */
export interface ImageSource {
  /** Human-readable name of the place, for messages (`docker://host/repo:tag`). */
  readonly description: string;
  /** Set by registry sources, so a destination on the same registry can mount instead of upload. */
  readonly location?: RegistryLocation;
  /**
   * Set when this source cannot give the image's original manifest bytes (a Docker archive or
   * daemon export re-creates them): says why the digest differs from the one the image was pushed with.
   */
  readonly digestChange?: string;
  /**
   * True when the place holds layers uncompressed because it keeps no registry form of the image
   * (a Docker archive, the daemon): the copy engine compresses them for a registry or OCI layout.
   */
  readonly uncompressedLayers?: boolean;
  /**
   * The manifest the reference names, or (by digest) one manifest inside it such as an index child.
   * With `limit.maxBytes`, a larger manifest is refused (TooLargeError) without being held in memory.
   */
  getManifest(digest?: Digest, limit?: ReadLimit): Promise<RawManifest>;
  /** Streams a blob; the copy engine verifies its digest as it passes. */
  getBlob(descriptor: Descriptor): Promise<Readable>;
  /** Tags of the repository, where the transport can list them. */
  listTags?(): Promise<string[]>;
  /** Manifests that name `subject` (referrers API or tag schema), where the transport can tell; `limit` bounds the list read from a registry. */
  listReferrers?(subject: Digest, limit?: ReadLimit): Promise<Descriptor[]>;
  /** The manifest under a tag of the same repository (cosign `sha256-<hex>.sig`), or undefined when absent. */
  getTaggedManifest?(tag: string, limit?: ReadLimit): Promise<RawManifest | undefined>;
  close(): Promise<void>;
}

/** Extra facts the copy engine gives with a manifest. */
export interface PutManifestOptions {
  /** True for the manifest the copied reference names (the last one the engine writes for it). */
  top?: boolean;
}

/** A place an image can be written to. */
export interface ImageDestination {
  readonly description: string;
  /** The tag the destination reference names, if any; the engine passes it to putManifest for the top manifest. */
  readonly tag?: string;
  /** Set by registry destinations (see ImageSource.location). */
  readonly location?: RegistryLocation;
  /**
   * Set when this destination stores manifests re-encoded (a Docker archive holds uncompressed layers):
   * says why the digest changes. `--preserve-digests` turns it into an error.
   */
  readonly digestChange?: string;
  /**
   * True for an OCI layout: a manifest the engine re-creates anyway (from a Docker archive or daemon)
   * is written there with OCI media types, since other tools find only OCI manifests in a layout.
   */
  readonly prefersOci?: boolean;
  /** True when the destination holds one image and no index (docker-archive, docker-daemon): the engine picks one platform. */
  readonly singleImage?: boolean;
  /** True when the blob is already there (the engine then skips sending it). */
  hasBlob(descriptor: Descriptor): Promise<boolean>;
  /** Writes a blob from a stream of exactly `descriptor.size` bytes. */
  putBlob(descriptor: Descriptor, body: Readable): Promise<void>;
  /** Mounts a blob from another repository of the same registry; false when not possible. */
  mountBlob?(descriptor: Descriptor, fromRepository: string): Promise<boolean>;
  /**
   * Writes manifest bytes unchanged. `tag` is given for the top-level manifest when the destination
   * reference has a tag; children of an index are written by digest only.
   */
  putManifest(manifest: RawManifest, tag?: string, options?: PutManifestOptions): Promise<void>;
  /** Finishes the write (archives are only complete here). */
  commit(): Promise<void>;
  close(): Promise<void>;
}

/** Parsed transport reference: `docker://`, `oci:`, `oci-archive:`, `docker-archive:`, `docker-daemon:`, `s3:`, `oci-http:`. */
export interface TransportReference {
  transport: 'docker' | 'oci' | 'oci-archive' | 'docker-archive' | 'docker-daemon' | 's3' | 'oci-http';
  /** The text after the transport prefix. */
  rest: string;
}

/** Splits `transport:rest`; `docker://x` keeps `x` as rest. */
export function parseTransportReference(text: string): TransportReference {
  const m = /^(docker|oci|oci-archive|docker-archive|docker-daemon|s3|oci-http):(.*)$/.exec(text);
  if (!m)
    throw new Error(
      `unknown transport in "${text}": expected docker://, oci:, oci-archive:, docker-archive:, docker-daemon:, s3: or oci-http:`,
    );
  const transport = m[1] as TransportReference['transport'];
  let rest = m[2]!;
  if (transport === 'docker') {
    if (!rest.startsWith('//')) throw new Error(`"${text}": the docker transport is written docker://HOST/REPO[:TAG]`);
    rest = rest.slice(2);
  }
  return { transport, rest };
}
