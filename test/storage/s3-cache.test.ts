import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlobFills, type BlobFill } from '../../src/proxy/blob-fill.js';
import type { Digest } from '../../src/oci/digest.js';
import type { RepositoryName } from '../../src/oci/name.js';
import { BlobStore } from '../../src/storage/blobs.js';
import { blobDataPath } from '../../src/storage/layout.js';
import { S3Driver, type S3Options } from '../../src/storage/s3.js';
import { UploadStore } from '../../src/storage/uploads.js';
import { startRegistry, testS3 } from '../helpers/registry.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { bytesOf } from '../helpers/oci-http.js';
import { blobOf, Client, failMidBlob, farBehindReader, MiB, upstream, type TestFillBlob } from '../helpers/fill.js';

// The pull-through cache's fill (one upstream download per blob, clients served while it runs) with its
// storage in a bucket: the S3 writer holds bytes until a part is full, so "written" is not "readable".

const REPO = 'docker.io/library/fill' as RepositoryName;

/** Fills over a fresh folder of the test process's bucket. */
async function world() {
  const s3 = await testS3();
  const root = `fill-${randomUUID()}`;
  const driver = new S3Driver(s3.config(root) as unknown as S3Options);
  const blobs = new BlobStore(driver);
  const uploads = new UploadStore(driver, blobs);
  const fills = new BlobFills({ driver, blobs, uploads });
  return {
    root,
    driver,
    fills,
    /** Every key the fills left under the repository's upload sessions, parts included. */
    uploadKeys: () => s3.keys(`${root}/docker/registry/v2/repositories/${REPO}/_uploads/`),
    storedSize: async (d: Digest) => (await driver.stat(blobDataPath(d)))?.size ?? null,
    close: async () => {
      await fills.settle();
      driver.destroy();
    },
  };
}

function startFill(w: Awaited<ReturnType<typeof world>>, blob: TestFillBlob, body: Readable): Promise<BlobFill> {
  return w.fills.start(
    blob.digest,
    blob.size,
    REPO,
    async () => ({ body, size: blob.size }),
    async () => undefined,
  );
}

test('on S3, a reader that falls far behind a running fill reads on from the bucket and gets every byte in order', async () => {
  const w = await world();
  try {
    const blob = blobOf(400); // 25 MiB: three times the memory window, five 5 MiB parts
    // Released at 20.5 MiB: past the window, and not a multiple of the part size (the tail is only in the writer).
    await farBehindReader((body) => startFill(w, blob, body), blob, 328, 12 * MiB, 60_000);
    assert.equal(await w.storedSize(blob.digest), blob.size);
    assert.deepEqual(await w.uploadKeys(), []);
  } finally {
    await w.close();
  }
});

test('on S3, an upstream that dies mid-blob cuts every reader and leaves nothing visible: no blob, no session, no part', async () => {
  const w = await world();
  try {
    const blob = blobOf(200); // 12.5 MiB: two parts flushed before the failure
    await failMidBlob((body) => startFill(w, blob, body), blob, 180);
    assert.equal(await w.storedSize(blob.digest), null);
    assert.deepEqual(await w.uploadKeys(), []);
    // The next asker gets a fill of its own, which succeeds.
    const again = await startFill(w, blob, upstream(blob));
    const reader = new Client();
    await again.pipeTo(reader, 0, blob.size);
    await again.finished;
    assert.equal(again.state, 'done', again.error?.message);
    assert.equal(reader.digest(), blob.digest);
    assert.equal(await w.storedSize(blob.digest), blob.size);
  } finally {
    await w.close();
  }
});

test('a cache on S3: a cold pull of a 24 MiB layer by six clients at once is one upstream download, every client gets every byte', async () => {
  const up = await startRegistry();
  let upClosed = false;
  let upstreamBlobGets = 0;
  up.app.server.on('request', (req: { method?: string; url?: string }) => {
    if (req.method === 'GET' && req.url?.includes('/blobs/sha256:')) upstreamBlobGets++;
  });
  const cacheRoot = `cache-${randomUUID()}`;
  const cache = await startRegistry({
    storage: { filesystem: undefined, s3: (await testS3()).config(cacheRoot) },
    upstreams: { 'docker.io': { url: up.url, ttl: '1h', timeout: '5s' } },
    flows: [{ images: ['docker.io/library/*'] }],
  });
  try {
    assert.equal(cache.storage, 's3');
    const img = await makeImage({ layers: [{ 'big.bin': randomBytes(24 * MiB) }], label: 's3-cold' });
    await pushImage(up.url, 'library/cold', '1', img);
    const m = await fetch(`${cache.url}/v2/docker.io/library/cold/manifests/1`, { headers: { accept: img.mediaType } });
    assert.equal(m.status, 200);
    assert.deepEqual(await bytesOf(m), img.manifest);
    const layer = img.layers[0]!;
    const url = `${cache.url}/v2/docker.io/library/cold/blobs/${layer.descriptor.digest}`;
    const got = await Promise.all(Array.from({ length: 6 }, () => fetch(url).then(bytesOf)));
    for (const b of got) assert.ok(b.equals(layer.bytes), 'a client got other bytes');
    assert.equal(upstreamBlobGets, 1);
    // The blob goes into the bucket under Distribution's key once verified (clients may finish first, from
    // memory), and the fill's session is gone then.
    const blobKey = `${cacheRoot}/${blobDataPath(layer.descriptor.digest as Digest)}`;
    let keys: string[] = [];
    for (let i = 0; i < 200; i++) {
      keys = await (await testS3()).keys(`${cacheRoot}/`);
      if (keys.includes(blobKey) && !keys.some((k) => k.includes('_uploads'))) break;
      await sleep(100);
    }
    assert.ok(keys.includes(blobKey), keys.join('\n'));
    assert.deepEqual(
      keys.filter((k) => k.includes('_uploads')),
      [],
    );
    // Served from the bucket now, with upstream gone.
    await up.close();
    upClosed = true;
    const again = await fetch(url);
    assert.ok((await bytesOf(again)).equals(layer.bytes));
  } finally {
    await cache.close();
    if (!upClosed) await up.close();
  }
});
