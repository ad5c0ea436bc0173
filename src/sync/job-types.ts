// The shapes a mirror job is built from and reports through: what it needs, how a run is asked for, what it says.
import type { CopyProgress } from '../copy/copy.js';
import type { Digest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/name.js';
import type { FlowPolicy } from '../policy/flows.js';
import type { BlobStore } from '../storage/blobs.js';
import type { StorageDriver } from '../storage/driver.js';
import type { RepositoryStore } from '../storage/repository.js';
import type { UploadStore } from '../storage/uploads.js';
import type { TransportOptions } from '../transport/index.js';
import type { RegistryPool } from '../transport/registry-client.js';
import type { ImageSource } from '../transport/transport.js';
import type { Upstreams } from '../upstream/upstreams.js';

/** What a mirror job needs of the registry around it. */
export interface SyncDeps {
  driver: StorageDriver;
  blobs: BlobStore;
  uploads: UploadStore;
  repo(name: RepositoryName): RepositoryStore;
  upstreams: Upstreams;
  flows: FlowPolicy;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  changed?: () => void;
  /** Claims digests against garbage collection before the job relies on them (`gc/claim.ts`). */
  claim: (digests: Iterable<Digest>) => Promise<void>;
  /** Signature requirements (`trust:`) the job checks at the source before copying. */
  trust?: {
    ruleFor(repository: string, where: 'mirror'): unknown;
    check(
      source: ImageSource,
      repository: string,
      where: 'mirror',
      digest: Digest,
      dockerReference: string,
    ): Promise<{ allowed: boolean; reason: string }>;
  };
  /** Credentials and TLS settings for `to:` destinations (`sluice sync --dest-creds`, `--dest-tls-verify`). */
  destination?: TransportOptions;
  /** Connections shared across runs (`sluice sync`'s jobs); without it each run shares its own and closes them. */
  pool?: RegistryPool;
}

/** What a run reports as it goes, for progress bars or log lines. */
export interface RunProgress {
  /** More images to look at (a repository's selection, once known). */
  images?(n: number): void;
  /** An image starts copying; the callbacks returned follow its blobs. */
  copying?(image: string, destination: string): CopyProgress | undefined;
  /** An image is done with, whatever happened to it. */
  imageDone?(image: string, action: PlanStep['action']): void;
}

/** Options of one run. */
export interface RunOptions {
  dryRun?: boolean;
  onStep?: (s: PlanStep) => void;
  progress?: RunProgress;
}

/** One planned step of a run, as `--dry-run` prints it. */
export interface PlanStep {
  action: 'copy' | 'move' | 'unchanged' | 'prune' | 'refused' | 'error';
  image: string;
  tag?: string;
  digest?: string;
  previous?: string;
  destination?: string;
  reason: string;
}
