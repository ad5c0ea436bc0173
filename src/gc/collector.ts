import type { Digest } from '../oci/digest.js';
import { mapLimited } from '../async/limit.js';
import type { StorageDriver } from '../storage/driver.js';
import {
  blobDataPath,
  layerLinkPath,
  referrerLinkPath,
  revisionLinkPath,
  tagCurrentPath,
  tagPath,
} from '../storage/layout.js';
import { readLink } from '../storage/links.js';
import type { ManifestFacts, UnreadableManifest } from './facts.js';
import { ACTIVE_SETTLE_MS, HEARTBEAT_MS, STALL_MS } from './claim.js';
import type { Lifecycle } from './lifecycle.js';
import { markStorage } from './mark.js';
import { judgeLifecycle, type LifecycleVerdict } from './retention.js';
import { sizeBlobs } from './measure.js';
import { usageOf, type RepositoryUsage } from './usage.js';
import { activePath, heartbeatPath } from './paths.js';
import { planCollection, type Garbage } from './plan.js';
import {
  dropCandidate,
  dropDeleting,
  hasCandidate,
  listDeleting,
  readCandidates,
  writeCandidate,
  writeDeleting,
} from './records.js';

/** How one pass behaves. */
export interface CollectOptions {
  /** How long a digest must stay unused, untouched, before a later pass deletes it. */
  graceMs: number;
  /** Also collect manifests no tag, index or live subject refers to (Distribution's `--delete-untagged`). */
  deleteUntagged: boolean;
  /** Report the plan and change nothing, not even the candidate records. */
  dryRun: boolean;
  /** Retention rules and cache eviction to apply (`lifecycle.ts`); their tag deletions take the same two phases. */
  lifecycle?: Lifecycle;
  /** Called once per deleted object, for the audit log and metrics. */
  onDelete?: (g: Garbage, bytes: number) => void;
  /** Given the bytes per repository the mark found (sizes of blobs are read once per collector). */
  onUsage?: (usage: RepositoryUsage[]) => void;
  /** Runs after the plan and before the first deletion (tests put a push into this window). */
  beforeSweep?: () => Promise<void>;
  now?: () => number;
  /** How long `active` must stand before the first record or marker (`claim.ts`); tests shorten it with the claims' knowledge. */
  settleMs?: number;
}

/** What happened to one object of the plan. */
export interface Verdict {
  garbage: Garbage;
  /** `deleted`; `recorded` (found unused now, deleted by a later pass); `waiting` (in grace); `kept` (touched since). */
  action: 'deleted' | 'recorded' | 'waiting' | 'kept';
  /** When its digest was first found unused. */
  since: number;
  /** Bytes freed (a blob's size). */
  bytes: number;
}

/** The outcome of one pass. */
export interface CollectReport {
  verdicts: Verdict[];
  reclaimedBytes: number;
  deletedObjects: number;
  durationMs: number;
  blocked?: string;
  /** Retention's and eviction's verdict on every tag they govern, with the rule that decided. */
  lifecycle?: LifecycleVerdict[];
}

/**
 * One garbage-collection pass, in two phases across passes: a digest found unused is only recorded (with
 * the time); a later pass deletes it once the grace has passed, if it is still unused and nothing claimed
 * it meanwhile (see `claim.ts`). The deletion markers for this pass's deletions are written before the mark,
 * so a manifest stored before them is seen by the mark and one stored after them waits for the sweep.
 * Run by one collector at a time (`lease.ts`).
 */
export class Collector {
  /** What each manifest says, by digest: manifests never change, so later passes read only new ones. */
  private readonly known = new Map<Digest, ManifestFacts | UnreadableManifest>();
  /** When (performance.now()) this collector wrote or first saw `active`; undefined while it is not known to stand. */
  private activeSince: number | undefined;
  /** Sizes of the blobs the last mark found, for `onUsage`. */
  private sizes = new Map<Digest, number>();

  constructor(private readonly driver: StorageDriver) {}

  /** Runs one pass. */
  async collect(options: CollectOptions): Promise<CollectReport> {
    const now = options.now ?? Date.now;
    const started = now();
    const driver = this.driver;
    const settle = (): Promise<void> => this.settleActive(options.settleMs ?? ACTIVE_SETTLE_MS);
    if (!options.dryRun) {
      await dropDeleting(driver, await listDeleting(driver));
      // Announced before the mark, so its settle runs while the mark does: a pass that records or deletes
      // anything rarely waits for it (claims look digests up during the mark, which costs lookups, not safety).
      await this.announceActive();
    }
    const candidates = await readCandidates(driver);
    const due = new Map([...candidates].filter(([, since]) => started - since >= options.graceMs));
    const doomed = new Set<Digest>();
    let markers: string[] = [];
    let retire = false;
    let heartbeat: Heartbeat | undefined;
    try {
      if (!options.dryRun && due.size > 0) {
        await settle();
        heartbeat = await startHeartbeat(driver);
        markers = await writeDeleting(driver, due.keys());
        // A claim removes the record before it looks for the marker: an unchanged record after the marker
        // means no claim came before it, and any claim after it waits for this sweep.
        await mapLimited(due.keys(), WRITES_AT_ONCE, async (d) => {
          if (await hasCandidate(driver, d)) doomed.add(d);
        });
      }
      const marked = await markStorage(driver, this.known);
      const lifecycleOptions = { now: started, deleteUntagged: options.deleteUntagged, sizes: this.sizes };
      const lifecycle = options.lifecycle;
      const judged = lifecycle ? await judgeLifecycle(driver, marked, lifecycle, lifecycleOptions) : undefined;
      const plan = planCollection(judged?.facts ?? marked, options);
      if (judged) plan.garbage.push(...judged.garbage);
      if (options.onUsage) {
        this.sizes = await sizeBlobs(driver, marked.blobs, this.sizes);
        options.onUsage(usageOf(marked, this.sizes, options));
      }
      const verdicts: Verdict[] = [];
      let reclaimedBytes = 0;
      let deletedObjects = 0;
      const garbageDigests = new Set(plan.garbage.map((g) => g.digest));
      if (!options.dryRun) await options.beforeSweep?.();
      // One kind after another (`byRank`), the objects of one kind several at a time.
      for (const group of byRank(plan.garbage)) {
        const decided = await mapLimited(group, WRITES_AT_ONCE, async (g): Promise<Verdict> => {
          const since = candidates.get(g.digest) ?? started;
          let action: Verdict['action'];
          if (!candidates.has(g.digest)) action = 'recorded';
          else if (!due.has(g.digest)) action = 'waiting';
          else if (options.dryRun) action = 'deleted';
          else if (!doomed.has(g.digest) || plan.blocked) action = 'kept';
          else if (heartbeat?.lapsed()) {
            // Claims may have given up on this sweep: it deletes nothing more, and what it spared stays a candidate.
            doomed.delete(g.digest);
            action = 'kept';
          } else action = 'deleted';
          // Sized only when it goes: a pass that records 100,000 digests need not stat them.
          const sized = action === 'deleted' && g.kind === 'blob';
          const bytes = sized ? ((await driver.stat(blobDataPath(g.digest)))?.size ?? 0) : 0;
          // A tag moved to another manifest since the plan is not the tag the plan judged.
          if (action === 'deleted' && !options.dryRun && !(await this.remove(g))) action = 'kept';
          if (action === 'deleted' && !options.dryRun) {
            reclaimedBytes += bytes;
            deletedObjects++;
            options.onDelete?.(g, bytes);
          }
          return { garbage: g, action, since, bytes };
        });
        verdicts.push(...decided);
      }
      let remaining = 0;
      if (!options.dryRun) {
        if (garbageDigests.size > 0) await settle();
        await mapLimited(garbageDigests, WRITES_AT_ONCE, async (d) => {
          if (!doomed.has(d) || plan.blocked) remaining++;
          if (doomed.has(d) && !plan.blocked) await dropCandidate(driver, d);
          // The time of the record, not of the mark: a claim between the two removed nothing, and its pusher
          // still gets the whole grace from here.
          else if (!candidates.has(d) || (due.has(d) && !doomed.has(d))) await writeCandidate(driver, d, now());
        });
        // A candidate in use again (a manifest names it now) starts from nothing if it is ever unused again.
        const inUse = [...candidates.keys()].filter((d) => !garbageDigests.has(d));
        await mapLimited(inUse, WRITES_AT_ONCE, (d) => dropCandidate(driver, d));
        retire = remaining === 0;
      }
      const report: CollectReport = { verdicts, reclaimedBytes, deletedObjects, durationMs: now() - started };
      if (plan.blocked) report.blocked = plan.blocked;
      if (judged) report.lifecycle = judged.verdicts;
      return report;
    } finally {
      await dropDeleting(driver, markers);
      await heartbeat?.stop();
      if (retire) await this.retireActive();
    }
  }

  /** Makes sure `active` stands before anything it announces is written, and notes since when this collector knows it. */
  private async announceActive(): Promise<void> {
    if (await this.driver.stat(activePath)) {
      this.activeSince ??= performance.now();
      return;
    }
    await this.driver.putContent(activePath, Buffer.from(new Date().toISOString()));
    this.activeSince = performance.now();
  }

  /** Announces `active` if needed and waits until it has stood long enough that every node's claims look up digests again. */
  private async settleActive(settleMs: number): Promise<void> {
    await this.announceActive();
    const wait = (this.activeSince ?? performance.now()) + settleMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }

  /** Removes `active` once this pass left no record and no marker: claims are free again. */
  private async retireActive(): Promise<void> {
    if (this.activeSince === undefined && !(await this.driver.stat(activePath))) return;
    await this.driver.delete(activePath);
    this.activeSince = undefined;
  }

  /** Deletes one object of the plan; false when it is a tag that names another manifest now (re-pushed meanwhile). */
  private async remove(g: Garbage): Promise<boolean> {
    const folder = (link: string): string => link.replace(/\/link$/, '');
    switch (g.kind) {
      case 'tag':
        if ((await readLink(this.driver, tagCurrentPath(g.repository, g.tag))) !== g.digest) return false;
        await this.driver.delete(tagPath(g.repository, g.tag));
        return true;
      case 'manifest':
        await this.driver.delete(folder(revisionLinkPath(g.repository, g.digest)));
        if (g.subject) await this.driver.delete(folder(referrerLinkPath(g.repository, g.subject, g.digest)));
        return true;
      case 'layer-link':
        await this.driver.delete(folder(layerLinkPath(g.repository, g.digest)));
        return true;
      case 'blob':
        await this.driver.delete(blobDataPath(g.digest).replace(/\/data$/, ''));
        return true;
    }
  }
}

/** Tags before the revisions they name, links before the blobs: a crash mid-sweep never leaves a tag naming nothing. */
function byRank(garbage: Garbage[]): Garbage[][] {
  const rank = { tag: 0, manifest: 1, 'layer-link': 2, blob: 3 } as const;
  const groups: Garbage[][] = [[], [], [], []];
  for (const g of garbage) groups[rank[g.kind]]!.push(g);
  return groups;
}

/** Storage requests in flight at once for a pass's per-digest records, markers and deletions. */
const WRITES_AT_ONCE = 16;

/** A sweep's heartbeat (`claim.ts`): `lapsed` once this collector's last beat is too old for claims to trust it. */
interface Heartbeat {
  lapsed(): boolean;
  stop(): Promise<void>;
}

/**
 * Writes the heartbeat now and every `HEARTBEAT_MS` until stopped. A claim gives up on a heartbeat unchanged for
 * `STALL_MS`; the sweep stops deleting once its last written beat is half that old, so no deletion ever
 * follows a claim that gave up.
 */
async function startHeartbeat(driver: StorageDriver): Promise<Heartbeat> {
  const id = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  let n = 0;
  let last = 0;
  const beat = async (): Promise<void> => {
    await driver.putContent(heartbeatPath, Buffer.from(`${id} ${++n}`), { durable: false });
    last = performance.now();
  };
  await beat();
  let writing: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    writing = writing.then(beat).catch(() => undefined);
  }, HEARTBEAT_MS);
  return {
    lapsed: () => performance.now() - last > STALL_MS / 2,
    stop: async () => {
      clearInterval(timer);
      await writing;
      await driver.delete(heartbeatPath);
    },
  };
}
