// What fsck reports: the kinds of problem and one found problem (the checks and the repair share them).
import type { Digest } from '../oci/digest.js';

/** What is wrong with one object. */
export type ProblemKind =
  | 'blob-missing'
  | 'blob-corrupt'
  | 'blob-size'
  | 'manifest-missing'
  | 'manifest-corrupt'
  | 'manifest-unreadable'
  | 'link-invalid'
  | 'link-dangling'
  | 'link-missing'
  | 'referrer-dangling'
  | 'referrer-orphan'
  | 'upload-stale'
  | 'upload-broken';

/** One problem fsck found. Blob and manifest problems name the repositories whose tags need the object. */
export interface Problem {
  kind: ProblemKind;
  /** The storage path of the object (a link, or a blob's data). */
  path: string;
  detail: string;
  digest?: Digest;
  repository?: string;
  /** `repository:tag` of each tag whose image needs the object. */
  neededBy?: string[];
  /** For a blob: its size, and the media type its manifest gives it. */
  size?: number;
  mediaType?: string;
}
