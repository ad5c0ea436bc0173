import type { Digest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/name.js';
import { limiter } from '../async/limit.js';
import { judgeEviction, type CachedImage, type EvictionVerdict } from '../policy/eviction.js';
import { day, judgeTags, rulesFor, ruleLabel, untaggedKeepMs, type RetentionRule } from '../policy/retention.js';
import type { StorageDriver } from '../storage/driver.js';
import { revisionLinkPath, tagCurrentPath } from '../storage/layout.js';
import type { ManifestFacts, RepositoryFacts, StorageFacts } from './facts.js';
import type { EvictedCache, Lifecycle } from './lifecycle.js';
import { sizeBlobs } from './measure.js';
import { artifactTagSubject, type Garbage } from './plan.js';
import { readPulls } from './pulls.js';

/** Storage reads in flight at once while reading push times. */
const READS_AT_ONCE = 16;

/** The lifecycle's verdict on one tag, or on one untagged manifest (no `tag`). */
export interface LifecycleVerdict {
  repository: RepositoryName;
  tag?: string;
  digest: Digest;
  kept: boolean;
  /** `kept by rule 2 (latest 5)`, `deleted: pulled last 2026-09-01; rule 3 keeps 30d since a pull`, `evicted: …`. */
  reason: string;
}

/** What retention and eviction made of the mark: the facts the plan judges, the tags to delete, every verdict. */
export interface LifecycleOutcome {
  facts: StorageFacts;
  /** Tags retention or eviction deletes, each keyed by the manifest it names (whose grace governs it). */
  garbage: Garbage[];
  verdicts: LifecycleVerdict[];
}

/** One governed repository while it is judged. */
interface Judged {
  repo: RepositoryFacts;
  rules: RetentionRule[];
  cache?: EvictedCache;
  /** Ordinary tags (not artifact tags) with their times. */
  tags: { tag: string; digest: Digest; pushed: number; pulled?: number }[];
  /** Revisions no tag names, that name no subject and that no index here names: judged by `untagged` and eviction. */
  untagged: { digest: Digest; pushed: number; pulled?: number }[];
  /** Why a tag or untagged revision goes, by tag or by digest; absent: it stays. */
  gone: Map<string, string>;
  /** Tags eviction (not retention) takes. */
  evicted: Set<string>;
  verdicts: LifecycleVerdict[];
}

function isManifest(f: unknown): f is ManifestFacts {
  return f !== undefined && !('unreadable' in (f as object));
}

/** Every digest an image keeps stored: the manifest, its children, their blobs. */
function digestsOf(d: Digest, facts: StorageFacts, seen = new Set<Digest>()): Digest[] {
  if (seen.has(d)) return [];
  seen.add(d);
  const f = facts.manifests.get(d);
  if (!isManifest(f)) return [d];
  return [d, ...f.blobs, ...f.children.flatMap((c) => digestsOf(c, facts, seen))];
}

/** Reads push and pull times of a governed repository. */
async function readTimes(
  driver: StorageDriver,
  repo: RepositoryFacts,
  facts: StorageFacts,
  limit: ReturnType<typeof limiter>,
): Promise<Pick<Judged, 'tags' | 'untagged'>> {
  const pulls = await readPulls(driver, repo.name);
  const modified = async (path: string): Promise<number> => {
    const info = await limit(() => driver.stat(path));
    return info?.modified.getTime() ?? 0;
  };
  // A pull by digest of the manifest a tag names counts as a pull of the tag: the image was used.
  const withPull = <T extends object>(o: T, d: Digest, tag?: string): T & { pulled?: number } => {
    const times = [tag === undefined ? undefined : pulls.tags.get(tag), pulls.manifests.get(d)];
    const known = times.filter((x): x is number => x !== undefined);
    return known.length ? { ...o, pulled: Math.max(...known) } : o;
  };
  const ordinary = [...repo.tags].filter(([t]) => artifactTagSubject(t) === null);
  const tags = await Promise.all(
    ordinary.map(async ([tag, digest]) => {
      const pushed = await modified(tagCurrentPath(repo.name, tag));
      return withPull({ tag, digest, pushed }, digest, tag);
    }),
  );
  const named = new Set(repo.tags.values());
  const manifests = repo.revisions.map((d) => facts.manifests.get(d)).filter(isManifest);
  const children = new Set(manifests.flatMap((f) => f.children));
  const loose = repo.revisions.filter((d) => {
    const f = facts.manifests.get(d);
    return !named.has(d) && !children.has(d) && !(isManifest(f) && f.subject);
  });
  const untagged = await Promise.all(
    loose.map(async (digest) => {
      const pushed = await modified(revisionLinkPath(repo.name, digest));
      return withPull({ digest, pushed }, digest);
    }),
  );
  return { tags, untagged };
}

/** Applies the retention rules of one repository: tag verdicts and, with `untagged`, the loose revisions'. */
function applyRules(j: Judged, now: number): void {
  const verdicts = judgeTags(j.rules, j.tags, now);
  for (const t of j.tags) {
    const v = verdicts?.find((x) => x.tag === t.tag);
    if (v && !v.kept) j.gone.set(t.tag, v.reason.replace(/^deleted: /, ''));
    if (v) j.verdicts.push({ repository: j.repo.name, tag: t.tag, digest: t.digest, kept: v.kept, reason: v.reason });
  }
  const untagged = untaggedKeepMs(j.rules);
  if (!untagged) return;
  for (const u of j.untagged) {
    const last = Math.max(u.pushed, u.pulled ?? -Infinity);
    const kept = now - last <= untagged.ms;
    const facts = `untagged, pushed ${day(u.pushed)}${u.pulled === undefined ? '' : `, pulled last ${day(u.pulled)}`}`;
    const [rule, keeps] = [ruleLabel(untagged.rule), untagged.rule.spec.untagged];
    const reason = kept
      ? `kept by ${rule} (${facts}, within ${keeps})`
      : `deleted: ${facts}; ${rule} keeps untagged ${keeps}`;
    if (!kept) j.gone.set(u.digest, reason.replace(/^deleted: /, ''));
    j.verdicts.push({ repository: j.repo.name, digest: u.digest, kept, reason });
  }
}

/** Applies one upstream's eviction across its cached repositories (the size cap counts them together). */
function applyEviction(
  flowEviction: Lifecycle['flowEviction'],
  cache: EvictedCache,
  judged: Judged[],
  facts: StorageFacts,
  sizes: Map<Digest, number>,
  now: number,
): void {
  const images: (CachedImage & { j: Judged; tag?: string; digest: Digest })[] = [];
  const image = (j: Judged, x: { digest: Digest; pushed: number; pulled?: number }, tag?: string) => ({
    j,
    key: tag === undefined ? `${j.repo.name}@${x.digest}` : `${j.repo.name}:${tag}`,
    ...(tag === undefined ? {} : { tag }),
    digest: x.digest,
    cached: x.pushed,
    ...(x.pulled === undefined ? {} : { pulled: x.pulled }),
    digests: digestsOf(x.digest, facts),
    ...unpulledOf(j, tag),
  });
  // A flow rule's own time, judged on the upstream name (`docker.io/library/nginx`) as the cache fetched it.
  const unpulledOf = (j: Judged, tag?: string) => {
    const rule = flowEviction(`${cache.host}/${j.repo.name.slice(cache.prefix.length + 1)}`, tag);
    return rule ? { unpulled: rule } : {};
  };
  for (const j of judged) {
    for (const t of j.tags) if (!j.gone.has(t.tag)) images.push(image(j, t, t.tag));
    for (const u of j.untagged) if (!j.gone.has(u.digest)) images.push(image(j, u));
  }
  const outcome = judgeEviction(images, cache.spec, sizes, now);
  const verdicts = new Map<string, EvictionVerdict>(outcome.map((v) => [v.key, v]));
  for (const i of images) {
    const v = verdicts.get(i.key)!;
    if (v.evicted) i.j.gone.set(i.tag ?? i.digest, v.reason);
    if (v.evicted && i.tag !== undefined) i.j.evicted.add(i.tag);
    // A kept tag already has retention's verdict when rules apply; an untagged one only when `untagged` judged it.
    const known = i.j.verdicts.find((x) => x.tag === i.tag && x.digest === i.digest);
    if (known) Object.assign(known, v.evicted ? { kept: false, reason: v.reason } : {});
    else {
      const tag = i.tag === undefined ? {} : { tag: i.tag };
      i.j.verdicts.push({ repository: i.j.repo.name, ...tag, digest: i.digest, kept: !v.evicted, reason: v.reason });
    }
  }
}

/** The repository as the plan should see it: the kept tags, and which loose revisions stay. */
function retainedFacts(j: Judged, deleteUntagged: boolean): RepositoryFacts {
  const tags = new Map([...j.repo.tags].filter(([t]) => !j.gone.has(t)));
  const governed = untaggedKeepMs(j.rules) !== undefined || j.cache !== undefined;
  const roots = j.untagged.filter((u) => (governed ? !j.gone.has(u.digest) : !deleteUntagged)).map((u) => u.digest);
  const reasons = new Map<Digest, string>();
  for (const u of j.untagged) {
    const why = j.gone.get(u.digest);
    if (why) reasons.set(u.digest, why);
  }
  for (const t of j.tags) {
    const why = j.gone.get(t.tag);
    if (why && !reasons.has(t.digest)) reasons.set(t.digest, `its last tag ${t.tag} went (${why})`);
  }
  return { ...j.repo, tags, retained: { roots, reasons } };
}

/**
 * Judges every repository retention rules or cache eviction govern: reads push times (the tag or revision link's
 * modification time) and pull times, lets the pure rules decide, and returns the facts the plan then judges as usual,
 * so a manifest that lost its last tag goes with it unless an index or another tag still needs it, and signatures
 * and referrers follow their subject. Repositories a mirror job writes are left to the job.
 */
export async function judgeLifecycle(
  driver: StorageDriver,
  facts: StorageFacts,
  lifecycle: Lifecycle,
  options: { now: number; deleteUntagged: boolean; sizes?: Map<Digest, number> },
): Promise<LifecycleOutcome> {
  const limit = limiter(READS_AT_ONCE);
  const judged: Judged[] = [];
  const verdicts: LifecycleVerdict[] = [];
  for (const repo of facts.repositories) {
    const rules = rulesFor(lifecycle.rules, repo.name);
    const cache = lifecycle.caches.find((c) => repo.name.startsWith(`${c.prefix}/`));
    if (rules.length === 0 && !cache) continue;
    const job = lifecycle.mirroredBy(repo.name);
    if (job) {
      for (const [tag, digest] of repo.tags) {
        const reason = `kept: mirror job ${job} writes this repository (its selection and prune decide)`;
        if (artifactTagSubject(tag) === null) verdicts.push({ repository: repo.name, tag, digest, kept: true, reason });
      }
      continue;
    }
    const times = await readTimes(driver, repo, facts, limit);
    const j: Judged = { repo, rules, ...times, gone: new Map(), evicted: new Set(), verdicts: [] };
    if (cache) j.cache = cache;
    applyRules(j, options.now);
    judged.push(j);
  }
  for (const cache of lifecycle.caches) {
    const mine = judged.filter((j) => j.cache === cache);
    if (mine.length === 0) continue;
    // Sizes only for a size cap: the rest of eviction is about time.
    const roots = mine.flatMap((j) => [...j.tags.map((t) => t.digest), ...j.untagged.map((u) => u.digest)]);
    const wanted = cache.spec.maxBytes === undefined ? [] : roots.flatMap((d) => digestsOf(d, facts));
    const sizes = await sizeBlobs(driver, wanted, options.sizes);
    applyEviction(lifecycle.flowEviction, cache, mine, facts, sizes, options.now);
  }
  const garbage: Garbage[] = [];
  const replaced = new Map<RepositoryName, RepositoryFacts>();
  for (const j of judged) {
    replaced.set(j.repo.name, retainedFacts(j, options.deleteUntagged));
    for (const t of j.tags) {
      const why = j.gone.get(t.tag);
      const cause = j.evicted.has(t.tag) ? 'eviction' : 'retention';
      if (why) garbage.push({ kind: 'tag', digest: t.digest, repository: j.repo.name, tag: t.tag, reason: why, cause });
    }
    verdicts.push(...j.verdicts);
  }
  const key = (v: LifecycleVerdict): string => `${v.repository} ${v.tag ?? v.digest}`;
  verdicts.sort((a, b) => (key(a) < key(b) ? -1 : 1));
  const repositories = facts.repositories.map((r) => replaced.get(r.name) ?? r);
  return { facts: { ...facts, repositories }, garbage, verdicts };
}
