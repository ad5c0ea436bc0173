import type { Config } from '../config/schema.js';
import type { FlowPolicy } from '../policy/flows.js';
import { flowPolicyOf } from '../policy/flow-policy.js';
import type { TransportOptions } from '../transport/options.js';
import { Upstreams } from '../upstream/upstreams.js';
import { mirrorNamesProblem } from './config.js';
import { MirrorJob, type SyncDeps } from './job.js';

/** Storage and surroundings mirror jobs write into: a running registry's, or one `sluice sync` opens. */
export interface MirrorHost
  extends Pick<SyncDeps, 'driver' | 'blobs' | 'uploads' | 'repo' | 'log' | 'changed' | 'claim' | 'trust' | 'pool'> {
  /** The cache's upstreams and flows when the registry has a cache (one rate-limit state for both). */
  upstreams?: Upstreams;
  flows?: FlowPolicy;
  /** Credentials and TLS settings for `to:` destinations. */
  destination?: TransportOptions;
}

/** The mirror jobs a config names, writing into the host's storage (or their `to`). */
export function buildMirrorJobs(host: MirrorHost, config: Config): MirrorJob[] {
  const mirrors = config.mirrors ?? [];
  const named = mirrorNamesProblem(config.mirrors);
  if (named) throw new Error(named);
  const deps: SyncDeps = {
    ...host,
    upstreams: host.upstreams ?? new Upstreams(config.upstreams ?? {}, config.proxy),
    flows: host.flows ?? flowPolicyOf(config),
  };
  return mirrors.map((m, i) => new MirrorJob(m, i, deps));
}
