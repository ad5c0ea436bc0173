// Copying blobs: once per digest, one copy at a time per destination registry, mounted where possible, retried.
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { isConnectionError, RegistryError } from '../transport/registry-client.js';
import type { Copier } from './copier.js';
import type { BlobAction } from './types.js';
import { BlobVerificationError, VerifyStream } from './verify.js';

function retryable(e: unknown): boolean {
  if (e instanceof BlobVerificationError) return false;
  if (e instanceof RegistryError) return e.status >= 500 || e.status === 429;
  return isConnectionError(e) || /aborted|socket|other side closed|premature close/i.test((e as Error)?.message ?? '');
}

/**
 * Where this process last wrote or found each blob at a destination registry: `registry digest` →
 * repository. A later image bound for another repository of that registry mounts the blob from there
 * (one small POST) instead of downloading and uploading it again, as skopeo's blob-info cache does.
 */
const placed = new Map<string, string[]>();
const PLACED_MAX = 20_000;
/** Repositories remembered per blob (the latest last): enough to know where a run already put it. */
const PLACES_MAX = 16;
/** The copy whose turn it is with a blob at a destination registry, by `registry digest`; other copies wait for it. */
const writing = new Map<string, { done: Promise<void> }>();

function remember(registry: string, digest: Digest, repository: string): void {
  const key = `${registry} ${digest}`;
  const places = (placed.get(key) ?? []).filter((r) => r !== repository);
  places.push(repository);
  placed.delete(key);
  placed.set(key, places.slice(-PLACES_MAX));
  if (placed.size > PLACED_MAX) placed.delete(placed.keys().next().value!);
}

/** Copies one blob once, however many manifests name it. */
export function copyBlob(c: Copier, d: Descriptor): Promise<void> {
  let job = c.blobJobs.get(d.digest);
  if (!job) {
    job = c.run(() => transferBlob(c, d));
    c.blobJobs.set(d.digest, job);
  }
  return job;
}

async function transferBlob(c: Copier, d: Descriptor): Promise<void> {
  const p = c.opts.progress;
  p?.blobStart?.(d);
  const from = c.src.location;
  const to = c.dst.location;
  const done = (action: BlobAction) => {
    if (to) remember(to.registry, d.digest, to.repository);
    c.summary.blobs.push({ digest: d.digest, size: d.size, action });
    if (action === 'sent') c.summary.bytesSent += d.size;
    else if (action === 'skipped') c.summary.bytesSkipped += d.size;
    else c.summary.bytesMounted += d.size;
    p?.blobDone?.(d, action);
  };
  const key = to && `${to.registry} ${d.digest}`;
  // One copy at a time per blob and destination registry, each taking its turn once the one before has
  // put, mounted or found it: images copied side by side send a shared layer once, and two copies bound
  // for one repository never mount it there at once (Distribution rewrites the repository's link file in
  // place, and a manifest PUT reading it meanwhile fails with DIGEST_INVALID). Claimed without an await
  // in between, so that the first copy to resume takes the next turn.
  let release: (() => void) | undefined;
  if (key) {
    for (let other = writing.get(key); other; other = writing.get(key)) await other.done;
    writing.set(key, { done: new Promise<void>((r) => (release = r)) });
  }
  try {
    const places = key ? placed.get(key) : undefined;
    // Where this process put it last; none when it is in the target repository already (then a HEAD finds it).
    const known = to && places && !places.includes(to.repository) ? places[places.length - 1] : undefined;
    // Mounting first saves the HEAD that would answer 404 in a repository new to this blob.
    // A remembered repository is a guess (the client may not read it, or it is gone): a failed mount falls through.
    if (to && known && c.dst.mountBlob && (await c.dst.mountBlob(d, known).catch(() => false))) return done('mounted');
    if (await c.dst.hasBlob(d)) return done('skipped');
    if (
      from &&
      to &&
      c.dst.mountBlob &&
      from.registry === to.registry &&
      from.repository !== to.repository &&
      from.repository !== known
    ) {
      if (await c.dst.mountBlob(d, from.repository)) return done('mounted');
    }
    return await upload(c, d, done);
  } finally {
    if (release) {
      writing.delete(key!);
      release();
    }
  }
}

/** Sends a blob from the source, retrying what a retry can cure. */
async function upload(c: Copier, d: Descriptor, done: (action: BlobAction) => void): Promise<void> {
  const p = c.opts.progress;
  const retries = c.opts.retryTimes ?? 3;
  for (let attempt = 0; ; attempt++) {
    let stream: Readable | undefined;
    try {
      stream = c.compressor?.blob(d) ?? (await c.src.getBlob(d));
      const verify = new VerifyStream(d, (n) => p?.blobBytes?.(d, n));
      // A failing source must fail the verified stream too, or the destination would wait forever.
      stream.once('error', (e) => verify.destroy(e));
      // A blob that fails verification (too short, too long, another digest) fails the copy whether or not
      // the destination is listening at that moment: unheard, the stream's error event would end the process.
      const refused = new Promise<never>((_, reject) => verify.once('error', reject));
      await Promise.race([c.dst.putBlob(d, stream.pipe(verify)), refused]);
      return done('sent');
    } catch (e) {
      stream?.destroy();
      if (attempt >= retries || !retryable(e)) throw e;
      p?.blobRetry?.(d, e as Error);
      await sleep(Math.min(500 * 2 ** attempt, 10_000));
    }
  }
}
