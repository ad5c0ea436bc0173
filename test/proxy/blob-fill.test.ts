import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { BlobFills, type BlobFill } from '../../src/proxy/blob-fill.js';
import type { Digest } from '../../src/oci/digest.js';
import type { RepositoryName } from '../../src/oci/name.js';
import { BlobStore } from '../../src/storage/blobs.js';
import type { FileWriter } from '../../src/storage/driver.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { blobDataPath } from '../../src/storage/layout.js';
import { UploadStore } from '../../src/storage/uploads.js';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { bytesOf } from '../helpers/oci-http.js';
import {
  blobOf,
  Client,
  digestOfRange,
  failMidBlob,
  farBehindReader,
  MiB,
  upstream,
  type TestFillBlob,
} from '../helpers/fill.js';

const REPO = 'docker.io/library/fill' as RepositoryName;

/** A filesystem driver that counts reads of upload sessions (the growing file) and watches the fill's writes. */
class WatchedDriver extends FilesystemDriver {
  sessionReads = 0;
  /** The most file writes a fill had under way at once. */
  maxPendingWrites = 0;

  override async reader(path: string, offset?: number, length?: number): Promise<Readable> {
    if (path.includes('/_uploads/')) this.sessionReads++;
    return super.reader(path, offset, length);
  }

  override async sendTo(path: string, out: Writable, offset: number, length: number): Promise<void> {
    if (path.includes('/_uploads/')) this.sessionReads++;
    return super.sendTo(path, out, offset, length);
  }

  override async writer(path: string): Promise<FileWriter> {
    const w = await super.writer(path);
    const stream = w.stream;
    const write = stream.write.bind(stream) as (chunk: Buffer, cb?: (e?: Error | null) => void) => boolean;
    let pending = 0;
    stream.write = ((chunk: Buffer, cb?: (e?: Error | null) => void) => {
      pending++;
      this.maxPendingWrites = Math.max(this.maxPendingWrites, pending);
      return write(chunk, (e) => {
        pending--;
        cb?.(e);
      });
    }) as typeof stream.write;
    return w;
  }
}

/** A fill's world: storage in a temporary directory, and the fills on top of it. */
async function world() {
  const root = await mkdtemp(join(tmpdir(), 'sluice-fill-'));
  const driver = new WatchedDriver(root);
  const blobs = new BlobStore(driver);
  const uploads = new UploadStore(driver, blobs);
  const fills = new BlobFills({ driver, blobs, uploads });
  return {
    root,
    driver,
    blobs,
    fills,
    /** Nothing left of any upload session of the repository. */
    sessionsLeft: async () => (await driver.list(`docker/registry/v2/repositories/${REPO}/_uploads`)).length,
    close: async () => {
      await fills.settle();
      await rm(root, { recursive: true, force: true });
    },
  };
}

function startFill(
  w: Awaited<ReturnType<typeof world>>,
  blob: TestFillBlob,
  body: Readable,
  size = blob.size,
): Promise<BlobFill> {
  return w.fills.start(
    blob.digest,
    size,
    REPO,
    async () => ({ body, size }),
    async () => undefined,
  );
}

async function storedSize(w: Awaited<ReturnType<typeof world>>, digest: Digest): Promise<number | null> {
  return (await stat(join(w.root, blobDataPath(digest))).catch(() => null))?.size ?? null;
}

test('readers that keep up with a fill are sent its chunks from memory: no read of the growing file, every byte right', async () => {
  const w = await world();
  try {
    const blob = blobOf(256); // 16 MiB
    // An upstream slower than the readers, as a real one is: each chunk a turn of the event loop apart.
    const fill = await startFill(
      w,
      blob,
      upstream(blob, () => tick()),
    );
    const whole = new Client();
    const ranged = new Client();
    const rangeEnd = 5 * MiB + 17;
    await Promise.all([fill.pipeTo(whole, 0, blob.size), fill.pipeTo(ranged, 1000, rangeEnd)]);
    await fill.finished;
    assert.equal(fill.state, 'done', fill.error?.message);
    assert.equal(whole.digest(), blob.digest);
    assert.equal(ranged.bytes, rangeEnd - 1000);
    assert.equal(ranged.digest(), digestOfRange(blob, 1000, rangeEnd));
    // Before: one read stream opened on the session file each time a reader caught up (about one per chunk).
    assert.equal(w.driver.sessionReads, 0, 'readers that kept up read the growing file');
    assert.equal(await storedSize(w, blob.digest), blob.size);
    assert.equal(await w.sessionsLeft(), 0);
  } finally {
    await w.close();
  }
});

test('a reader that falls far behind a running fill reads on from the file in a few large reads, and gets every byte', async () => {
  const w = await world();
  try {
    const blob = blobOf(640); // 40 MiB, five times the memory window
    // The slow client stops taking bytes early; 30 MiB arrive meanwhile; then it goes on while the fill still runs.
    await farBehindReader((body) => startFill(w, blob, body), blob, 480, 20 * MiB);
    // The slow reader read the file (it was far behind what memory keeps), in a few large reads, not one per chunk.
    assert.ok(w.driver.sessionReads >= 1, 'the slow reader never read the file');
    assert.ok(w.driver.sessionReads <= 10, `${w.driver.sessionReads} reads of the growing file`);
  } finally {
    await w.close();
  }
});

test('four readers of a 256 MiB fill get every byte while the process memory stays flat', async (t) => {
  const w = await world();
  try {
    const blob = blobOf(4096); // 256 MiB
    global.gc?.();
    const base = process.memoryUsage().rss;
    let peak = base;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    try {
      // Upstream at full speed: the fill outruns some readers, which then read the file and the stored blob.
      const fill = await startFill(w, blob, upstream(blob));
      const readers = [new Client(), new Client(), new Client(true), new Client()];
      const ranges: [number, number][] = [
        [0, blob.size],
        [0, blob.size],
        [0, blob.size],
        [100 * MiB + 3, 150 * MiB],
      ];
      await Promise.all(readers.map((r, i) => fill.pipeTo(r, ranges[i]![0], ranges[i]![1])));
      await fill.finished;
      assert.equal(fill.state, 'done', fill.error?.message);
      for (const [i, r] of readers.entries()) {
        const [start, end] = ranges[i]!;
        assert.equal(r.bytes, end - start, `reader ${i}`);
        assert.equal(
          r.digest(),
          start === 0 && end === blob.size ? blob.digest : digestOfRange(blob, start, end),
          `reader ${i}`,
        );
      }
    } finally {
      clearInterval(sampler);
    }
    const grew = (peak - base) / MiB;
    t.diagnostic(`RSS grew by ${grew.toFixed(1)} MiB; ${w.driver.sessionReads} reads of the growing file`);
    assert.ok(grew < 64, `RSS grew by ${grew.toFixed(1)} MiB for a 256 MiB blob`);
    // The fill read on while its file writes were under way, instead of waiting for each.
    assert.ok(w.driver.maxPendingWrites > 1, `at most ${w.driver.maxPendingWrites} file write under way`);
    assert.equal(await storedSize(w, blob.digest), blob.size);
  } finally {
    await w.close();
  }
});

test('an upstream that dies mid-blob cuts every reader, caught up or behind, leaves nothing behind, and the next pull starts afresh', async () => {
  const w = await world();
  try {
    const blob = blobOf(160); // 10 MiB
    const { fill } = await failMidBlob((body) => startFill(w, blob, body), blob, 100);
    assert.equal(await storedSize(w, blob.digest), null);
    assert.equal(await w.sessionsLeft(), 0);
    // The failed fill is forgotten: the next asker gets a fill of its own, which can succeed.
    const again = await startFill(w, blob, upstream(blob));
    assert.notEqual(again, fill);
    const reader = new Client();
    await again.pipeTo(reader, 0, blob.size);
    await again.finished;
    assert.equal(again.state, 'done', again.error?.message);
    assert.equal(reader.digest(), blob.digest);
  } finally {
    await w.close();
  }
});

test('bytes that do not match the digest are never sent whole: the reader is cut before the last chunk', async () => {
  const w = await world();
  try {
    const blob = blobOf(32);
    const other = blobOf(32); // same size, other bytes
    const reader = new Client();
    const fill = await startFill(
      w,
      blob,
      upstream(other, () => tick()),
    );
    await assert.rejects(fill.pipeTo(reader, 0, blob.size));
    await fill.finished;
    assert.equal(fill.state, 'failed');
    assert.match(fill.error?.message ?? '', /digest/);
    assert.ok(reader.bytes < blob.size, 'the reader got every byte of content that does not match');
    assert.equal(await storedSize(w, blob.digest), null);
    assert.equal(await w.sessionsLeft(), 0);
  } finally {
    await w.close();
  }
});

test('a reader that goes away mid-fill is cut alone: the fill and the other readers go on', async () => {
  const w = await world();
  try {
    const blob = blobOf(320); // 20 MiB
    const leaving = new Client();
    const staying = new Client();
    leaving.holdFrom(2 * MiB);
    leaving.onHeld = () => setImmediate(() => leaving.destroy());
    const fill = await startFill(
      w,
      blob,
      upstream(blob, () => tick()),
    );
    const [gone, stayed] = await Promise.allSettled([
      fill.pipeTo(leaving, 0, blob.size),
      fill.pipeTo(staying, 0, blob.size),
    ]);
    assert.equal(gone.status, 'rejected');
    assert.equal(stayed.status, 'fulfilled');
    await fill.finished;
    assert.equal(fill.state, 'done', fill.error?.message);
    assert.equal(staying.digest(), blob.digest);
    assert.equal(await storedSize(w, blob.digest), blob.size);
  } finally {
    await w.close();
  }
});

test('through the cache, a client that stops reading for a while and then goes on gets every byte', async () => {
  const up = await startRegistry();
  const cache = await startRegistry({
    upstreams: { 'docker.io': { url: up.url, ttl: '1h', timeout: '5s' } },
    flows: [{ images: ['docker.io/library/*'] }],
  });
  try {
    const big = randomBytes(32 * MiB);
    const img = await makeImage({ layers: [{ 'big.bin': big }], label: 'pause' });
    await pushImage(up.url, 'library/pause', '1', img);
    await (await fetch(`${cache.url}/v2/docker.io/library/pause/manifests/1`)).arrayBuffer();
    const layer = img.layers[0]!;
    const url = `${cache.url}/v2/docker.io/library/pause/blobs/${layer.descriptor.digest}`;
    const paused = new Promise<Buffer>((resolve, reject) => {
      const req = request(url, (res) => {
        const parts: Buffer[] = [];
        let got = 0;
        let pausedOnce = false;
        res.on('data', (b: Buffer) => {
          parts.push(b);
          got += b.length;
          if (!pausedOnce && got >= 1 * MiB) {
            pausedOnce = true;
            res.pause();
            setTimeout(() => res.resume(), 500);
          }
        });
        res.on('end', () => resolve(Buffer.concat(parts)));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    // A second client reads along at full speed meanwhile.
    const other = fetch(url).then(bytesOf);
    const [a, b] = await Promise.all([paused, other]);
    assert.ok(a.equals(layer.bytes), 'the paused client got other bytes');
    assert.ok(b.equals(layer.bytes), 'the other client got other bytes');
  } finally {
    await cache.close();
    await up.close();
  }
});
