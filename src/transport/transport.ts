import type { Readable } from 'node:stream';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';

/** Manifest bytes exactly as stored at a source, with their media type and digest. */
export interface RawManifest {
  bytes: Buffer;
  mediaType: string;
  digest: Digest;
}

/** A place an image can be read from (registry, layout directory, archive, daemon). */
export interface ImageSource {
  /** Human-readable name of the place, for messages (`docker://host/repo:tag`). */
  readonly description: string;
  /** The manifest the reference names, or (by digest) one manifest inside it such as an index child. */
  getManifest(digest?: Digest): Promise<RawManifest>;
  /** Streams a blob; the copy engine verifies its digest as it passes. */
  getBlob(descriptor: Descriptor): Promise<Readable>;
  /** Tags of the repository, where the transport can list them. */
  listTags?(): Promise<string[]>;
  /** Manifests that name `subject` (referrers API or tag schema), where the transport can tell. */
  listReferrers?(subject: Digest): Promise<Descriptor[]>;
  close(): Promise<void>;
}

/** A place an image can be written to. */
export interface ImageDestination {
  readonly description: string;
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
  putManifest(manifest: RawManifest, tag?: string): Promise<void>;
  /** Finishes the write (archives are only complete here). */
  commit(): Promise<void>;
  close(): Promise<void>;
}

/** Parsed transport reference: `docker://`, `oci:`, `oci-archive:`, `docker-archive:`, `docker-daemon:`. */
export interface TransportReference {
  transport: 'docker' | 'oci' | 'oci-archive' | 'docker-archive' | 'docker-daemon';
  /** The text after the transport prefix. */
  rest: string;
}

/** Splits `transport:rest`; `docker://x` keeps `x` as rest. */
export function parseTransportReference(text: string): TransportReference {
  const m = /^(docker|oci|oci-archive|docker-archive|docker-daemon):(.*)$/.exec(text);
  if (!m) throw new Error(`unknown transport in "${text}": expected docker://, oci:, oci-archive:, docker-archive: or docker-daemon:`);
  const transport = m[1] as TransportReference['transport'];
  let rest = m[2]!;
  if (transport === 'docker') {
    if (!rest.startsWith('//')) throw new Error(`"${text}": the docker transport is written docker://HOST/REPO[:TAG]`);
    rest = rest.slice(2);
  }
  return { transport, rest };
}
