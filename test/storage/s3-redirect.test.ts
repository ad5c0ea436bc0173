import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { digestOf } from '../../src/oci/digest.js';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { addS3Key } from '../helpers/s3-nodes.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { podmanIn, scratch, skopeoCopy } from '../helpers/clients.js';
import { hasDocker, startDockerd } from '../helpers/dockerd.js';
import { hasTool, needTools, runOk } from '../helpers/tools.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { bytesOf } from '../helpers/oci-http.js';

let s3: TestS3;
let work: { dir: string; cleanup: () => Promise<void> };

before(async () => {
  s3 = await startS3('reg');
  work = await scratch('sluice-s3-redirect-');
});

after(async () => {
  await s3.close();
  await work.cleanup();
});

/** A registry on the test S3 signing with `key`; `redirect` sets storage.redirect.disable to its negation. */
async function node(key: string, redirect: boolean): Promise<TestRegistry> {
  addS3Key(key);
  return startRegistry({
    storage: {
      filesystem: undefined,
      s3: s3.config('redir', { accesskey: key, secretkey: key }),
      redirect: { disable: !redirect },
    },
  });
}

/** GETs of a blob's data object: by the node (its key signs the request) or by a client holding a presigned URL. */
function blobGets(since: number, hex: string, key: string): { byNode: number; presigned: number } {
  const gets = s3.requests
    .slice(since)
    .filter((r) => r.method === 'GET' && r.url.includes(`/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`));
  return {
    byNode: gets.filter((r) => r.accessKey === key).length,
    presigned: gets.filter(
      (r) =>
        r.accessKey === undefined && r.url.includes('X-Amz-Signature=') && r.url.includes(`X-Amz-Credential=${key}%2F`),
    ).length,
  };
}

test('with storage.redirect.disable: false a blob GET answers 307 to a presigned URL; HEAD, 304 and the bytes stay right', async () => {
  const img = await makeImage({ label: 'redir', layers: [{ a: randomBytes(2 << 20) }] });
  const reg = await node('REDIR', true);
  try {
    await pushImage(reg.url, 'lib/app', 'v1', img);
    const layer = img.layers[0]!;
    const hex = layer.descriptor.digest.slice('sha256:'.length);
    const blobUrl = `${reg.url}/v2/lib/app/blobs/${layer.descriptor.digest}`;
    const r = await fetch(blobUrl, { redirect: 'manual' });
    assert.equal(r.status, 307);
    assert.equal(r.headers.get('docker-content-digest'), layer.descriptor.digest);
    const location = new URL(r.headers.get('location')!);
    assert.equal(location.origin, s3.endpoint);
    assert.equal(location.searchParams.get('X-Amz-Expires'), '1200');
    assert.ok(location.searchParams.get('X-Amz-Signature'));
    // HEAD is answered by the node itself.
    const h = await fetch(blobUrl, { method: 'HEAD', redirect: 'manual' });
    assert.equal(h.status, 200);
    assert.equal(h.headers.get('content-length'), String(layer.bytes.length));
    const cached = await fetch(blobUrl, {
      headers: { 'if-none-match': `"${layer.descriptor.digest}"` },
      redirect: 'manual',
    });
    assert.equal(cached.status, 304);
    // An unknown blob is still the registry's 404, not a redirect to nothing.
    const unknown = await fetch(`${reg.url}/v2/lib/app/blobs/${digestOf(Buffer.from('nope'))}`, { redirect: 'manual' });
    assert.equal(unknown.status, 404);

    const since = s3.requests.length;
    // fetch follows, keeping the Range header: the bucket answers it.
    const whole = await fetch(blobUrl);
    assert.equal(whole.status, 200);
    assert.deepEqual(await bytesOf(whole), layer.bytes);
    const part = await fetch(blobUrl, { headers: { range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.deepEqual(await bytesOf(part), layer.bytes.subarray(10, 20));
    if (hasTool('curl')) {
      const file = join(work.dir, 'curl-blob');
      await runOk('curl', ['-sfL', '-o', file, blobUrl]);
      assert.equal(digestOf(await readFile(file)), layer.descriptor.digest);
    }
    const seen = blobGets(since, hex, 'REDIR');
    assert.equal(seen.byNode, 0, 'the node read none of the blob');
    assert.ok(seen.presigned >= 2, `the bucket served the blob on presigned URLs (${seen.presigned})`);
  } finally {
    await reg.close();
  }
  // Without the key, the same node serves the bytes itself (and so the count above can tell the two apart).
  const plain = await node('PLAIN', false);
  try {
    const layer = img.layers[0]!;
    const since = s3.requests.length;
    const r = await fetch(`${plain.url}/v2/lib/app/blobs/${layer.descriptor.digest}`, { redirect: 'manual' });
    assert.equal(r.status, 200);
    assert.deepEqual(await bytesOf(r), layer.bytes);
    const seen = blobGets(since, layer.descriptor.digest.slice('sha256:'.length), 'PLAIN');
    assert.ok(seen.byNode >= 1);
    assert.equal(seen.presigned, 0);
  } finally {
    await plain.close();
  }
});

test('skopeo, podman and docker pull through a redirecting node and get the pushed digests; no layer byte passes the node', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const img = await makeImage({
    label: 'redir-clients',
    format: 'docker',
    layers: [{ 'a.bin': randomBytes(3 << 20) }, { 'b.txt': 'two' }],
  });
  const reg = await node('REDIR2', true);
  try {
    await pushImage(reg.url, 'lib/pulled', 'v1', img);
    const noBytesThroughNode = (since: number, who: string) => {
      for (const b of [img.config, ...img.layers]) {
        const seen = blobGets(since, b.descriptor.digest.slice('sha256:'.length), 'REDIR2');
        assert.equal(seen.byNode, 0, `${who}: ${b.descriptor.digest} passed through the node`);
        assert.ok(seen.presigned >= 1, `${who}: ${b.descriptor.digest} was fetched from the bucket`);
      }
    };
    let since = s3.requests.length;
    const out = join(work.dir, 'skopeo');
    // dir: keeps the manifest as pulled (oci: would convert a Docker manifest and change its digest).
    await skopeoCopy(`docker://${reg.host}/lib/pulled:v1`, `dir:${out}`);
    assert.equal(digestOf(await readFile(join(out, 'manifest.json'))), img.digest);
    noBytesThroughNode(since, 'skopeo');
    if (hasTool('podman')) {
      since = s3.requests.length;
      const podman = podmanIn(join(work.dir, 'podman'));
      await podman.run(['pull', '-q', '--tls-verify=false', `${reg.host}/lib/pulled:v1`]);
      const inspected = JSON.parse((await podman.run(['image', 'inspect', `${reg.host}/lib/pulled:v1`])).stdout)[0] as {
        Digest: string;
      };
      assert.equal(inspected.Digest, img.digest);
      noBytesThroughNode(since, 'podman');
    } else {
      t.diagnostic('podman not available');
    }
    if (hasDocker()) {
      const d = await startDockerd();
      try {
        since = s3.requests.length;
        await d.docker(['pull', `${reg.host}/lib/pulled:v1`]);
        const repoDigests = (
          await d.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', `${reg.host}/lib/pulled:v1`])
        ).stdout;
        assert.ok(repoDigests.includes(`${reg.host}/lib/pulled@${img.digest}`), repoDigests);
        noBytesThroughNode(since, 'docker');
      } finally {
        await d.stop();
      }
    } else {
      t.diagnostic('docker not available: only skopeo was checked');
    }
  } finally {
    await reg.close();
  }
});
