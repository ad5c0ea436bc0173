import type { Digest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/name.js';
import { limiter } from '../copy/limit.js';
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
async function readTimes(driver: StorageDriver, repo: RepositoryFacts, facts: StorageFacts, limit: ReturnType<typeof limiter>): Promise<Pick<Judged, 'tags' | 'untagged'>> {
  const pulls = await readPulls(driver, repo.name);
  const modified = async (path: string): Promise<number> => (await limit(() => driver.stat(path)))?.modified.getTime() ?? 0;
  const lastPull = (d: Digest, tag?: string): number | undefined => {
    const times = [tag === undefined ? undefined : pulls.tags.get(tag), pulls.manifests.get(d)].filter((x): x is number => x !== undefined);
    return times.length ? Math.max(...times) : undefined;
  };
  const withPull = <T extends object>(o: T, pulled: number | undefined): T & { pulled?: number } => (pulled === undefined ? o : { ...o, pulled });
  const ordinary = [...repo.tags].filter(([t]) => artifactTagSubject(t) === null);
  const tags = await Promise.all(
    ordinary.map(async ([tag, digest]) => withPull({ tag, digest, pushed: await modified(tagCurrentPath(repo.name, tag)) }, lastPull(digest, tag))),
  );
  const named = new Set(repo.tags.values());
  const children = new Set(repo.revisions.flatMap((d) => facts.manifests.get(d)).flatMap((f) => (isManifest(f) ? f.children : [])));
  const loose = repo.revisions.filter((d) => {
    const f = facts.manifests.get(d);
    return !named.has(d) && !children.has(d) && !(isManifest(f) && f.subject);
  });
  const untagged = await Promise.all(loose.map(async (digest) => withPull({ digest, pushed: await modified(revisionLinkPath(repo.name, digest)) }, lastPull(digest))));
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
    const reason = kept ? `kept by ${ruleLabel(untagged.rule)} (${facts}, within ${untagged.rule.spec.untagged})` : `deleted: ${facts}; ${ruleLabel(untagged.rule)} keeps untagged ${untagged.rule.spec.untagged}`;
    if (!kept) j.gone.set(u.digest, reason.replace(/^deleted: /, ''));
    j.verdicts.push({ repository: j.repo.name, digest: u.digest, kept, reason });
  }
}

/** Applies one upstream's eviction across its cached repositories (the size cap counts them together). */
async function applyEviction(cache: EvictedCache, judged: Judged[], facts: StorageFacts, sizes: Map<Digest, number>, now: number): Promise<void> {
  const images: (CachedImage & { j: Judged; tag?: string; digest: Digest })[] = [];
  for (const j of judged) {
    for (const t of j.tags) if (!j.gone.has(t.tag)) images.push({ j, key: `${j.repo.name}:${t.tag}`, tag: t.tag, digest: t.digest, cached: t.pushed, ...(t.pulled === undefined ? {} : { pulled: t.pulled }), digests: digestsOf(t.digest, facts) });
    for (const u of j.untagged) if (!j.gone.has(u.digest)) images.push({ j, key: `${j.repo.name}@${u.digest}`, digest: u.digest, cached: u.pushed, ...(u.pulled === undefined ? {} : { pulled: u.pulled }), digests: digestsOf(u.digest, facts) });
  }
  const verdicts = new Map<string, EvictionVerdict>(judgeEviction(images, cache.spec, sizes, now).map((v) => [v.key, v]));
  for (const i of images) {
    const v = verdicts.get(i.key)!;
    if (v.evicted) i.j.gone.set(i.tag ?? i.digest, v.reason);
    if (v.evicted && i.tag !== undefined) i.j.evicted.add(i.tag);
    // A kept tag already has retention's verdict when rules apply; an untagged one only when `untagged` judged it.
    const known = i.j.verdicts.find((x) => x.tag === i.tag && x.digest === i.digest);
    if (known) Object.assign(known, v.evicted ? { kept: false, reason: v.reason } : {});
    else i.j.verdicts.push({ repository: i.j.repo.name, ...(i.tag === undefined ? {} : { tag: i.tag }), digest: i.digest, kept: !v.evicted, reason: v.reason });
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
        if (artifactTagSubject(tag) === null) verdicts.push({ repository: repo.name, tag, digest, kept: true, reason: `kept: mirror job ${job} writes this repository (its selection and prune decide)` });
      }
      continue;
    }
    const j: Judged = { repo, rules, ...(cache ? { cache } : {}), ...(await readTimes(driver, repo, facts, limit)), gone: new Map(), evicted: new Set(), verdicts: [] };
    applyRules(j, options.now);
    judged.push(j);
  }
  for (const cache of lifecycle.caches) {
    const mine = judged.filter((j) => j.cache === cache);
    if (mine.length === 0) continue;
    const wanted = cache.spec.maxBytes === undefined ? [] : mine.flatMap((j) => [...j.tags.map((t) => t.digest), ...j.untagged.map((u) => u.digest)]).flatMap((d) => digestsOf(d, facts));
    const sizes = await sizeBlobs(driver, wanted, options.sizes);
    await applyEviction(cache, mine, facts, sizes, options.now);
  }
  const garbage: Garbage[] = [];
  const replaced = new Map<RepositoryName, RepositoryFacts>();
  for (const j of judged) {
    replaced.set(j.repo.name, retainedFacts(j, options.deleteUntagged));
    for (const t of j.tags) {
      const why = j.gone.get(t.tag);
      if (why) garbage.push({ kind: 'tag', digest: t.digest, repository: j.repo.name, tag: t.tag, reason: why, cause: j.evicted.has(t.tag) ? 'eviction' : 'retention' });
    }
    verdicts.push(...j.verdicts);
  }
  verdicts.sort((a, b) => (a.repository < b.repository ? -1 : a.repository > b.repository ? 1 : (a.tag ?? a.digest) < (b.tag ?? b.digest) ? -1 : 1));
  return { facts: { ...facts, repositories: facts.repositories.map((r) => replaced.get(r.name) ?? r) }, garbage, verdicts };
}
