import type { Config } from '../config/schema.js';
import { flowPolicyOf } from '../policy/flow-policy.js';
import { PullThroughCache } from '../proxy/cache.js';
import { Upstreams } from '../upstream/upstreams.js';
import type { RegistryContext } from './context.js';
import type { Trust } from './trust-setup.js';
import type { ImageSource } from '../transport/transport.js';
import type { Digest } from '../oci/digest.js';
import { claimForPush } from './gc-claim.js';

// Moved to policy/ so that `sluice sync` reads the flows without loading the cache.
export { flowPolicyOf };

/** The pull-through cache a config asks for (`upstreams:` or `proxy:`), or undefined. */
export function buildCache(ctx: RegistryContext, config: Config, trust?: Trust): PullThroughCache | undefined {
  if (!config.upstreams && !config.proxy) return undefined;
  const upstreams = new Upstreams(config.upstreams ?? {}, config.proxy);
  const flows = flowPolicyOf(config);
  return new PullThroughCache(upstreams, flows, {
    driver: ctx.driver,
    blobs: ctx.blobs,
    uploads: ctx.uploads,
    scanner: ctx.scanner,
    repo: (name) => ctx.repo(name),
    readOnly: ctx.readOnly,
    manifestLimit: ctx.manifestLimit,
    metrics: ctx.metrics.registry,
    log: { info: () => undefined, warn: () => undefined },
    changed: () => ctx.catalog.invalidate(),
    claim: (digests) => claimForPush(ctx, digests),
    ...(trust
      ? {
          verify: async (image: string, source: ImageSource, digest: Digest, ref: string) =>
            trust.ruleFor(image, 'cache') ? trust.check(source, image, 'cache', digest, ref) : undefined,
        }
      : {}),
  });
}
