import { existsSync } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { formatReference } from '../oci/reference.js';
import type { FlowPolicy } from '../policy/flows.js';
import { parseDaemonHost, type DaemonImage, type DockerEngine } from '../transport/docker-engine.js';
import { familiarName, parseTaggedName } from '../transport/docker-names.js';
import type { Upstreams } from '../upstream/upstreams.js';
import type { Mode, Publicness, PublicQuery } from './decide.js';
import { compileImagePatterns, makePlan, targetTags, type PlanEntry } from './plan.js';
import type { PublicnessChecker } from './publicness.js';
import type { SignatureGate, SignatureOutcome } from './signatures.js';
import type { HostReference } from './decide.js';
import { unapprovedChanges } from './unapproved.js';

/** The Engine API calls passthrough makes (a DockerEngine, or a wrapper of one in tests). */
export type Daemon = Pick<
  DockerEngine,
  'host' | 'listImages' | 'exportImages' | 'loadImages' | 'tagImage' | 'removeImage' | 'close'
>;

/** One run's inputs. */
export interface PassthroughRun {
  mode: Mode;
  registries: string[];
  images: string[];
  from: Daemon;
  to: Daemon;
  /** Where registries are reached for the public check; made only when a registry must be asked. */
  upstreams: Upstreams | (() => Upstreams | Promise<Upstreams>);
  dryRun?: boolean;
  /** A config's `flows:`: an image they refuse is not loaded, as the cache would not fetch it. */
  flows?: FlowPolicy;
  /** Signature requirements (config `trust:` for passthrough, a containers-policy.json); nothing is loaded that fails one. */
  signatures?: SignatureGate[];
  /** How long the public check waits for one registry question (default: the checker's, 60 s). */
  publicDeadlineMs?: number;
  /** Bytes of the export stream so far, called as they pass (for a progress line). */
  onProgress?: (bytes: number) => void;
}

/** A plan row after the run: `copied`, or `failed: why` for a copy that did not land. */
export interface ResultEntry extends PlanEntry {
  result?: string;
}

/** What a run did. */
export interface PassthroughResult {
  mode: Mode;
  from: string;
  to: string;
  dryRun: boolean;
  entries: ResultEntry[];
  warnings: string[];
  copied: number;
  failed: number;
  /** Bytes of `docker save` streams sent into the target. */
  bytes: number;
  /** What the run took out of the target again: images and tags a load brought that were not approved. */
  removed: string[];
  /** Anonymous registry requests made to prove images public. */
  registryRequests: number;
  seconds: number;
  /** Why nothing was looked at (mode off, no host socket), when that is so. */
  idle?: string;
}

/** True when `host` is a unix socket path that does not exist (nothing is mounted there). */
export function socketMissing(host: string): boolean {
  const t = parseDaemonHost(host);
  return t.socketPath !== undefined && !existsSync(t.socketPath);
}

function counted(stream: Readable, onBytes: (n: number) => void): Readable {
  let total = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      onBytes(total);
      cb(null, chunk);
    },
  });
  stream.on('error', (e) => counter.destroy(e));
  return stream.pipe(counter);
}

/** Streams `docker save IDS…` from one daemon into `docker load` of the other; returns the bytes sent. */
async function transfer(
  from: Daemon,
  to: Daemon,
  ids: string[],
  onProgress?: (bytes: number) => void,
  base = 0,
): Promise<number> {
  let bytes = 0;
  const stream = counted(await from.exportImages(ids), (n) => {
    bytes = n;
    onProgress?.(base + n);
  });
  await to.loadImages(stream);
  return bytes;
}

/** The plan's signature check: signatures are read from the registry each RepoDigest names, reached through `upstreams`, a few at a time. */
async function signatureCheck(
  gates: SignatureGate[],
  upstreams: PassthroughRun['upstreams'],
): Promise<(r: HostReference) => Promise<SignatureOutcome | undefined>> {
  const [{ checkSignatures }, { RegistrySource }, { limiter }] = await Promise.all([
    import('./signatures.js'),
    import('../transport/docker.js'),
    import('../async/limit.js'),
  ]);
  const u = typeof upstreams === 'function' ? await upstreams() : upstreams;
  const limit = limiter(4);
  return (r) =>
    limit(() =>
      checkSignatures(r, gates, (registry, repository, digest) => {
        const up = u.orDefault(registry);
        return new RegistrySource({ registry: up.name, repository, digest }, up.options);
      }),
    );
}

/**
 * Takes back what a load added or moved beyond the approved tags (see unapproved.ts); returns what it
 * took back. A failure here is the run's failure: an unapproved image must not stay unnoticed.
 */
async function undoUnapproved(to: Daemon, before: DaemonImage[], approved: Map<string, string>): Promise<string[]> {
  const undo = unapprovedChanges(before, await to.listImages(), approved);
  const done: string[] = [];
  try {
    for (const [tag, id] of undo.restore) {
      await to.tagImage(id, tag);
      done.push(`${tag} (pointed back at ${id})`);
    }
    for (const tag of undo.untag) {
      await to.removeImage(tag);
      done.push(tag);
    }
    for (const id of undo.remove) {
      await to.removeImage(id, { force: true });
      done.push(id);
    }
  } catch (e) {
    throw new Error(
      `the load put images or tags into ${to.host} that were not approved, and removing them failed: ${(e as Error).message}`,
      { cause: e },
    );
  }
  return done;
}

/**
 * Seeds the target daemon from the host: plans (see decide.ts), then sends every selected image by the
 * ID that was judged in one `docker save` stream, so layers shared between images travel once, loads it
 * once and tags each image in the target as approved; a tag moved on the host meanwhile changes nothing.
 * Whatever else the load brought is taken back. Each tag is then checked in the target by image ID.
 * When the one stream fails, the images are sent one by one, so one bad image does not keep the others out.
 */
export async function runPassthrough(run: PassthroughRun): Promise<PassthroughResult> {
  const started = Date.now();
  const result: PassthroughResult = {
    mode: run.mode,
    from: run.from.host,
    to: run.to.host,
    dryRun: run.dryRun ?? false,
    entries: [],
    warnings: [],
    copied: 0,
    failed: 0,
    bytes: 0,
    removed: [],
    registryRequests: 0,
    seconds: 0,
  };
  const finish = (): PassthroughResult => ({ ...result, seconds: (Date.now() - started) / 1000 });
  if (run.mode === 'off') return { ...finish(), idle: 'mode off' };
  if (socketMissing(run.from.host)) {
    result.idle = `no host Docker socket at ${parseDaemonHost(run.from.host).socketPath!}`;
    if (run.images.length > 0) {
      const path = parseDaemonHost(run.from.host).socketPath!;
      result.warnings.push(
        `an image list is given but there is no host Docker socket at ${path}: the inner daemon is not seeded, and each image is pulled when first used (mount it with -v /var/run/docker.sock:${path}:ro)`,
      );
    }
    return finish();
  }
  const patterns = compileImagePatterns(run.images);
  const [host, target] = await Promise.all([run.from.listImages(), run.to.listImages()]);
  // The registry client (undici) is loaded only when a registry must be asked: a run with nothing new starts faster.
  let checker: Promise<PublicnessChecker> | undefined;
  const isPublic = (q: PublicQuery): Promise<Publicness> => {
    checker ??= (async () => {
      const { PublicnessChecker } = await import('./publicness.js');
      const upstreams = typeof run.upstreams === 'function' ? await run.upstreams() : run.upstreams;
      return new PublicnessChecker(
        upstreams,
        run.publicDeadlineMs !== undefined ? { deadlineMs: run.publicDeadlineMs } : {},
      );
    })();
    return checker.then((c) => c.check(q));
  };
  const gates = run.signatures ?? [];
  const signed = gates.length > 0 ? await signatureCheck(gates, run.upstreams) : undefined;
  try {
    const filters = {
      mode: run.mode,
      registries: run.registries,
      patterns,
      ...(run.flows ? { flows: run.flows } : {}),
    };
    const plan = await makePlan(host, target, filters, run.images, isPublic, signed);
    result.entries = plan.entries;
    result.warnings.push(...plan.warnings);
  } finally {
    const c = await checker?.catch(() => undefined);
    result.registryRequests = c?.requests ?? 0;
    await c?.close();
  }
  const selected = result.entries.filter((e) => e.decision === 'copy');
  if (run.dryRun || selected.length === 0) return finish();

  // What was judged is an image ID: that image is sent, whatever its tags on the host name by now.
  const byImage = new Map<string, ResultEntry[]>();
  for (const e of selected) byImage.set(e.image, [...(byImage.get(e.image) ?? []), e]);
  const approved = new Map(selected.map((e) => [formatReference(parseTaggedName(e.reference)), e.image]));
  const before = await run.to.listImages();
  const failures = new Map<string, string>();
  try {
    result.bytes += await transfer(run.from, run.to, [...byImage.keys()], run.onProgress);
  } catch (e) {
    result.warnings.push(
      `sending all ${byImage.size} images in one stream failed (${(e as Error).message}); sending image by image`,
    );
    for (const [id, group] of byImage) {
      try {
        result.bytes += await transfer(run.from, run.to, [id], run.onProgress, result.bytes);
      } catch (err) {
        for (const g of group) failures.set(g.reference, (err as Error).message);
      }
    }
  }
  const loaded = new Set((await run.to.listImages()).map((i) => i.id));
  for (const e of selected) {
    if (failures.has(e.reference) || !loaded.has(e.image)) continue;
    try {
      // Docker's short spelling, as the host lists it (`busybox:1`).
      await run.to.tagImage(e.image, familiarName(parseTaggedName(e.reference)));
    } catch (err) {
      failures.set(e.reference, (err as Error).message);
    }
  }
  result.removed = await undoUnapproved(run.to, before, approved);
  if (result.removed.length > 0)
    result.warnings.push(
      `the load brought images or tags that were not approved; taken back from ${run.to.host}: ${result.removed.join(', ')}`,
    );
  // The daemon's answers say little; what counts is each tag naming the judged image now.
  const now = targetTags(await run.to.listImages());
  for (const e of selected) {
    const id = now.get(formatReference(parseTaggedName(e.reference)));
    if (id === e.image) {
      (e as ResultEntry).result = 'copied';
      result.copied++;
    } else {
      (e as ResultEntry).result =
        `failed: ${failures.get(e.reference) ?? (id ? `the target has ${e.reference} as ${id} after the load` : `the target has no ${e.reference} after the load`)}`;
      result.failed++;
    }
  }
  return finish();
}
