import { parseDuration } from '../config/duration.js';
import { parseSize, type EvictConfig } from './retention-config.js';
import { day } from './retention.js';

/** One cached image as eviction sees it: a tag, or a manifest pulled by digest alone. */
export interface CachedImage {
  /** `repository:tag` or `repository@digest`: what a verdict is about. */
  key: string;
  /** When it was cached (its link's time). */
  cached: number;
  /** Its last pull, by tag or by digest. */
  pulled?: number;
  /** Every digest it keeps stored (manifests and blobs), for the size cap. */
  digests: string[];
  /** A flow rule's own `evict.unpulled` for this image, in place of the upstream's. */
  unpulled?: { ms: number; text: string; where: string };
}

/** The eviction settings of one upstream, compiled; `where` names them in verdicts (`upstreams.docker.io.evict`). */
export interface EvictionSpec {
  where: string;
  unpulledMs?: number;
  unpulled?: string;
  maxBytes?: number;
  maxsize?: string | number;
}

/** The verdict on one cached image. */
export interface EvictionVerdict {
  key: string;
  evicted: boolean;
  reason: string;
}

/** Compiles an `evict:` block. */
export function compileEviction(where: string, c: EvictConfig): EvictionSpec {
  const out: EvictionSpec = { where };
  if (c.unpulled !== undefined) Object.assign(out, { unpulled: c.unpulled, unpulledMs: parseDuration(c.unpulled) });
  if (c.maxsize !== undefined) Object.assign(out, { maxsize: c.maxsize, maxBytes: parseSize(c.maxsize) });
  return out;
}

/** When an image was last used: its last pull, or when it was cached if it never was. */
function lastUsed(i: CachedImage): number {
  return Math.max(i.cached, i.pulled ?? -Infinity);
}

function used(i: CachedImage): string {
  return i.pulled === undefined ? `never pulled, cached ${day(i.cached)}` : `pulled last ${day(i.pulled)}`;
}

/**
 * Judges the cached images of one upstream: those unused for longer than `unpulled` are evicted, then, while the
 * images left hold more than `maxsize` bytes (each digest counted once), the least recently used go first. The next
 * pull fetches an evicted image again. Pure: sizes come from the caller.
 */
export function judgeEviction(
  images: CachedImage[],
  spec: EvictionSpec,
  sizes: Map<string, number>,
  now: number,
): EvictionVerdict[] {
  const verdicts = new Map<string, EvictionVerdict>();
  const left: CachedImage[] = [];
  const { unpulledMs: ms, unpulled: text, where } = spec;
  const upstreamTime = ms === undefined ? undefined : { ms, text, where };
  for (const i of images) {
    const unpulled = i.unpulled ?? upstreamTime;
    if (unpulled !== undefined && now - lastUsed(i) > unpulled.ms) {
      const reason = `evicted: ${used(i)}; ${unpulled.where} keeps ${unpulled.text} unpulled`;
      verdicts.set(i.key, { key: i.key, evicted: true, reason });
    } else left.push(i);
  }
  if (spec.maxBytes !== undefined) {
    const users = new Map<string, number>();
    let total = 0;
    for (const i of left) {
      for (const d of new Set(i.digests)) {
        const n = users.get(d) ?? 0;
        if (n === 0) total += sizes.get(d) ?? 0;
        users.set(d, n + 1);
      }
    }
    // Least recently used first; ties by name, so every pass picks the same.
    const order = [...left].sort((a, b) => lastUsed(a) - lastUsed(b) || (a.key < b.key ? -1 : 1));
    for (const i of order) {
      if (total <= spec.maxBytes) break;
      const before = total;
      for (const d of new Set(i.digests)) {
        const n = users.get(d)! - 1;
        users.set(d, n);
        if (n === 0) total -= sizes.get(d) ?? 0;
      }
      const why = `least recently used while the cache held ${before} bytes; ${spec.where} caps it at ${spec.maxsize}`;
      verdicts.set(i.key, { key: i.key, evicted: true, reason: `evicted: ${used(i)}, ${why}` });
    }
  }
  return images.map((i) => {
    const v = verdicts.get(i.key);
    if (v) return v;
    const within = i.unpulled ? `${i.unpulled.text} (${i.unpulled.where})` : spec.unpulled;
    const why = within !== undefined ? `${used(i)}, within ${within}` : used(i);
    const cap = spec.maxBytes !== undefined ? `, within ${spec.maxsize}` : '';
    return { key: i.key, evicted: false, reason: `kept in the cache: ${why}${cap} (${spec.where})` };
  });
}
