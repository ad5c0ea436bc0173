// Serves a blob of a cache repository that storage lacks: links it, or starts or joins a fill from upstream.
import type { Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { release } from '../transport/bounded.js';
import { watchRate } from '../transport/min-rate.js';
import { errorFrom, header, type ClientResponse } from '../transport/registry-client.js';
import type { BlobFill, FillSource } from './blob-fill.js';
import { upstreamRequest, type CacheState } from './cache-state.js';
import type { CacheTarget } from './names.js';
import { ociErrorForOutage } from './upstream-failure.js';

/**
 * Serves a blob of a cache repository that storage does not have yet, from a fill of the upstream blob,
 * or answers undefined when storage has it (the registry then serves it as usual). A blob is fetched only
 * when a manifest the cache stored in this repository references it: no blob comes in by digest alone.
 * A HEAD starts the fill too: the GET that follows it then finds bytes arriving.
 */
export async function blobFillFor(s: CacheState, t: CacheTarget, digest: Digest): Promise<BlobFill | undefined> {
  const repo = s.deps.repo(t.local);
  if ((await repo.blobSize(digest)) !== null) {
    s.counters.requests.inc({ kind: 'blob', result: 'hit' });
    return undefined;
  }
  await s.deps.scanner.refresh(repo);
  const size = s.deps.scanner.referencedBlobSize(t.local, digest);
  if (size === undefined) {
    throw new OciError(
      'BLOB_UNKNOWN',
      `blob ${digest} is not part of any image cached in ${t.local}: pull a manifest that references it first`,
      { digest },
    );
  }
  await s.deps.claim?.([digest]);
  // Stored already for another repository: linking it here is all it takes.
  if ((await s.deps.blobs.size(digest)) === size) {
    await repo.linkBlob(digest);
    s.counters.requests.inc({ kind: 'blob', result: 'hit' });
    return undefined;
  }
  if (s.deps.readOnly)
    throw new OciError('BLOB_UNKNOWN', `blob ${digest} is not cached yet and this registry is read-only`, { digest });
  // `open` runs for the client that starts the fill only; one that joins a fill under way is counted as joined.
  let opened = false;
  const fill = await s.fills.start(
    digest,
    size,
    t.local,
    async () => {
      opened = true;
      s.counters.requests.inc({ kind: 'blob', result: 'miss' });
      return openUpstreamBlob(s, t, digest, size);
    },
    async () => {
      await s.deps.claim?.([digest]);
      await repo.linkBlob(digest);
    },
  );
  if (!opened) s.counters.requests.inc({ kind: 'blob', result: 'joined' });
  void fill.finished.then(() => {
    if (fill.state === 'failed')
      s.deps.log.warn(
        { upstream: t.upstream.name, digest, err: fill.error?.message },
        'cache: blob fill failed; the next pull retries',
      );
  });
  return fill;
}

/** GETs the upstream blob for a fill, refusing it unless upstream announces the size its manifest gives. */
async function openUpstreamBlob(s: CacheState, t: CacheTarget, digest: Digest, size: number): Promise<FillSource> {
  let res: ClientResponse;
  try {
    res = await upstreamRequest(t, 'GET', `blobs/${digest}`);
  } catch (e) {
    throw ociErrorForOutage(t, e);
  }
  if (res.statusCode !== 200) {
    const err = await errorFrom(res, `${t.image}: blob ${digest}`);
    if (res.statusCode === 404)
      throw new OciError('BLOB_UNKNOWN', `upstream ${t.upstream.name} does not have blob ${digest} of ${t.image}`, {
        digest,
      });
    throw ociErrorForOutage(t, err);
  }
  const length = Number(header(res, 'content-length') ?? size);
  if (length !== size) {
    // Refused before the fill starts, so every asker (a HEAD too) gets an error answer, not a cut body.
    release(res.body);
    const announced = `upstream ${t.upstream.name} announced ${length} bytes for blob ${digest} of ${t.image}`;
    throw new OciError('UNKNOWN', `${announced}, its manifest says ${size}`, { digest }, 502);
  }
  const arrived = watchRate(res.body, t.upstream.minRate, `upstream ${t.upstream.name} blob ${digest} of ${t.image}`);
  const onBytes = (n: number) => {
    arrived(n);
    s.counters.upstreamBytes.inc({ upstream: t.upstream.name }, n);
  };
  return { body: res.body, size: length, onBytes };
}
