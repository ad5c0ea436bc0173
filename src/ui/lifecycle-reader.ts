import { lifecycleOf, type Lifecycle } from '../gc/lifecycle.js';
import { markStorage } from '../gc/mark.js';
import type { ManifestFacts, UnreadableManifest } from '../gc/facts.js';
import { sizeBlobs } from '../gc/measure.js';
import { judgeLifecycle, type LifecycleVerdict } from '../gc/retention.js';
import { usageOf, type RepositoryUsage } from '../gc/usage.js';
import type { Digest } from '../oci/digest.js';
import type { RegistryContext } from '../registry/context.js';

// The lifecycle page's reading of the storage, loaded on its first request: the collector's modules are not
// part of a server that never shows the page.

/** A reading of the whole storage is reused this long: it walks every repository and stats every blob. */
const FRESH_MS = 30_000;

/** What the collector's next pass would make of the storage: bytes per repository and a verdict per tag. */
export interface Reading {
  at: number;
  usage: RepositoryUsage[];
  verdicts: Map<string, LifecycleVerdict[]>;
}

/**
 * Reads the storage as `sluice du` and the collector do (mark, sizes, retention and eviction verdicts), at most
 * once per FRESH_MS and one reading at a time; manifests and sizes are content-addressed, so they are kept.
 */
export class LifecycleReader {
  private last: Reading | undefined;
  private reading: Promise<Reading> | undefined;
  private readonly manifests = new Map<Digest, ManifestFacts | UnreadableManifest>();
  private sizes = new Map<Digest, number>();

  constructor(
    private readonly ctx: RegistryContext,
    private readonly lifecycle: Lifecycle,
  ) {}

  get(): Promise<Reading> {
    if (this.last && Date.now() - this.last.at < FRESH_MS) return Promise.resolve(this.last);
    this.reading ??= this.read().finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async read(): Promise<Reading> {
    const deleteUntagged = this.ctx.config.storage.gc?.deleteuntagged ?? false;
    const facts = await markStorage(this.ctx.driver, this.manifests);
    this.sizes = await sizeBlobs(this.ctx.driver, facts.blobs, this.sizes);
    const usage = usageOf(facts, this.sizes, { deleteUntagged });
    const judged = await judgeLifecycle(this.ctx.driver, facts, this.lifecycle, {
      now: Date.now(),
      deleteUntagged,
      sizes: this.sizes,
    });
    const verdicts = new Map<string, LifecycleVerdict[]>();
    for (const v of judged.verdicts) {
      if (v.tag === undefined) continue;
      const list = verdicts.get(v.repository) ?? [];
      list.push(v);
      verdicts.set(v.repository, list);
    }
    this.last = { at: Date.now(), usage, verdicts };
    return this.last;
  }
}

/** A reader of the lifecycle the config asks for (retention rules or cache eviction), or undefined; never throws. */
export function lifecycleReader(ctx: RegistryContext): LifecycleReader | undefined {
  let lifecycle: Lifecycle | undefined;
  try {
    lifecycle = lifecycleOf(ctx.config);
  } catch {
    return undefined;
  }
  return lifecycle ? new LifecycleReader(ctx, lifecycle) : undefined;
}
