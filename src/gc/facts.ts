import type { Digest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/name.js';

/** What one stored manifest says, as far as the collector cares. */
export interface ManifestFacts {
  /** Child manifests (an index). */
  children: Digest[];
  /** Config and layers (an image manifest). */
  blobs: Digest[];
  subject?: Digest;
}

/** A manifest whose bytes are present but cannot be read as one: its blobs are unknown. */
export interface UnreadableManifest {
  unreadable: string;
}

/** One repository as the mark found it. */
export interface RepositoryFacts {
  name: RepositoryName;
  /** Tag to the digest its current link names. */
  tags: Map<string, Digest>;
  revisions: Digest[];
  /** Digests of the `_layers` links. */
  layers: Digest[];
  /**
   * Set for a repository under retention or cache eviction (`retention.ts`): its tags are then only those kept,
   * artifact tags follow their subject, and of the revisions no tag, index or subject needs only `roots` stay;
   * `reasons` says why each other revision goes.
   */
  retained?: { roots: Digest[]; reasons: Map<Digest, string> };
}

/** Everything the plan looks at: read by `mark.ts`, judged by `plan.ts`. */
export interface StorageFacts {
  repositories: RepositoryFacts[];
  /** Every digest with a `blobs/` entry. */
  blobs: Set<Digest>;
  /** Facts by manifest digest; absent when the manifest's bytes are missing. */
  manifests: Map<Digest, ManifestFacts | UnreadableManifest>;
}
