import type { Config } from '../config/schema.js';
import { compilePatterns, type Pattern } from '../policy/patterns.js';
import { ANONYMOUS } from '../policy/types.js';
import { jobName } from '../sync/config.js';

/** Where a repository's images come from: pushed here, fetched on demand by the cache, or copied by a mirror job. */
export type RepositoryKind = 'local' | 'cache' | 'mirror';

/** A repository's kind and, for cache and mirror repositories, what feeds it. */
export interface KindOf {
  kind: RepositoryKind;
  /** The upstream registry host a cache repository is named after. */
  upstream?: string;
  /** The mirror job that writes it. */
  job?: string;
}

interface MirrorMatch {
  job: string;
  patterns: Pattern[];
  prefix?: string;
}

/**
 * Tells repositories apart by name only (no storage read, so 10,000 rows cost 10,000 glob matches): mirror
 * jobs writing into this registry name their destinations after the upstream (or under their `prefix`),
 * and the cache names its repositories after the upstream host.
 */
export class RepositoryKinds {
  private readonly mirrors: MirrorMatch[];

  constructor(
    config: Config,
    private readonly cacheOf: (name: string) => string | undefined,
  ) {
    this.mirrors = (config.mirrors ?? [])
      .map((m, i) => ({ m, i }))
      // Jobs copying elsewhere (`to: docker://…`, `oci:`) write nothing here.
      .filter(({ m }) => m.to === undefined)
      .map(({ m, i }) => ({
        job: jobName(m, i),
        patterns: m.prefix === undefined && m.destname === undefined ? compilePatterns(m.images, {}) : [],
        ...(m.prefix !== undefined ? { prefix: m.prefix.replace(/\/+$/, '') } : {}),
      }));
  }

  /** The kind of one repository. */
  of(name: string): KindOf {
    for (const m of this.mirrors) {
      const byPrefix = m.prefix !== undefined && name.startsWith(`${m.prefix}/`);
      if (byPrefix || m.patterns.some((p) => p.matches({ repository: name }, ANONYMOUS)))
        return { kind: 'mirror', job: m.job };
    }
    const upstream = this.cacheOf(name);
    return upstream ? { kind: 'cache', upstream } : { kind: 'local' };
  }
}
