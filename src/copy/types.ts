// The shapes a caller of the copy engine sees: options, progress callbacks, the summary, and the refusal error.
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Platform } from '../oci/platform.js';
import type { CompressFormat } from './compress.js';

/** What happened to one blob. */
export type BlobAction = 'sent' | 'skipped' | 'mounted';

/** Callbacks the CLI turns into progress bars or log lines. */
export interface CopyProgress {
  blobStart?(d: Descriptor): void;
  blobBytes?(d: Descriptor, n: number): void;
  /** Called when a blob restarts after a failed attempt (its byte count goes back to zero). */
  blobRetry?(d: Descriptor, error: Error): void;
  blobDone?(d: Descriptor, action: BlobAction): void;
  /** Called when an uncompressed layer was compressed for the destination (before it is sent). */
  compressed?(from: Descriptor, to: Descriptor): void;
  warn?(message: string): void;
}

/** How to copy. */
export interface CopyOptions {
  /** Every platform of an index. */
  all?: boolean;
  /** A subset of an index's platforms; the original index is written unchanged unless `rewriteIndex`. */
  platforms?: Platform[];
  /** With a subset: write a new index listing only the copied platforms (its digest changes). */
  rewriteIndex?: boolean;
  /** Blobs in flight at once (default 4). */
  jobs?: number;
  /** Refuse any copy that would change a manifest digest. */
  preserveDigests?: boolean;
  /** Bring referrers and cosign `sha256-<hex>.sig/.att/.sbom` tags along. */
  withReferrers?: boolean;
  /**
   * With `withReferrers`: bring only evidence (signatures, attestations, SBOMs, by their layers' media types).
   * Set where a trust check judged the image: an image attached beside it was never judged, so it stays behind.
   */
  evidenceOnly?: boolean;
  /** Attempts per blob after the first on connection errors and 5xx (default 3). */
  retryTimes?: number;
  /**
   * How layers that a source holds uncompressed only because it keeps no registry form (docker-archive,
   * docker-daemon) are compressed for a registry or OCI layout: gzip by default, none with
   * `preserveDigests` (compressing changes the manifest digest), zstd where Node.js has it.
   */
  compressFormat?: CompressFormat;
  /** Folder for temporary files (compressed layers); default the system's. */
  tmpDir?: string;
  /** The platform used when neither `all` nor `platforms` is given (default: this machine's). */
  defaultPlatform?: Platform;
  progress?: CopyProgress;
}

/** The outcome of a copy, as `--json` prints it. */
export interface CopySummary {
  source: string;
  destination: string;
  /** Digest of the manifest the source reference names. */
  sourceDigest: Digest;
  /** Digest of the top manifest written to the destination (sent to it, where it keeps no manifest: see imageId). */
  digest: Digest;
  /** For a destination that keeps no manifest (docker-archive, docker-daemon): the config digest it holds, the image ID. */
  imageId?: Digest;
  mediaType: string;
  manifests: { digest: Digest; mediaType: string; platform?: string }[];
  blobs: { digest: Digest; size: number; action: BlobAction }[];
  bytesSent: number;
  bytesSkipped: number;
  bytesMounted: number;
  durationMs: number;
  warnings: string[];
}

/** A copy that cannot be done as asked; the message says what to do instead. */
export class CopyError extends Error {}
