import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf } from '../../src/oci/digest.js';
import { inspectRaw, layoutBlob, layoutDigest, podmanIn, scratch, skopeoCopy } from '../helpers/clients.js';
import { hasDocker, startDockerd } from '../helpers/dockerd.js';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { startRegistry, testS3, type TestRegistry } from '../helpers/registry.js';
import { needTools } from '../helpers/tools.js';

// Real clients push to and pull from a Sluice node whose storage is a bucket (s3rver), whatever
// SLUICE_TEST_STORAGE says: the digests they report must be the ones the node serves.

/** A node on its own folder of the test process's bucket; every object it writes is checked to be there. */
async function s3Node(): Promise<TestRegistry & { keys: () => Promise<string[]> }> {
  const s3 = await testS3();
  const root = `clients-${randomUUID()}`;
  const reg = await startRegistry({ storage: { s3: s3.config(root) } });
  assert.equal(reg.storage, 's3');
  return { ...reg, keys: () => s3.keys(`${root}/`) };
}

/** The bucket holds a manifest revision and its tag under the node's folder, and no unfinished upload. */
async function assertInBucket(
  node: Awaited<ReturnType<typeof s3Node>>,
  repo: string,
  tag: string,
  digest: string,
): Promise<void> {
  const keys = await node.keys();
  const hex = digest.slice('sha256:'.length);
  assert.ok(
    keys.some((k) => k.endsWith(`/repositories/${repo}/_manifests/revisions/sha256/${hex}/link`)),
    keys.join('\n'),
  );
  assert.ok(
    keys.some((k) => k.endsWith(`/repositories/${repo}/_manifests/tags/${tag}/current/link`)),
    keys.join('\n'),
  );
  assert.ok(
    keys.some((k) => k.endsWith(`/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`)),
    keys.join('\n'),
  );
  assert.deepEqual(
    keys.filter((k) => k.includes('/_uploads/')),
    [],
  );
}

test('skopeo copies an image (a 7 MiB layer: a multipart blob) to a node on S3 and back: same manifest digest, same blobs', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const s = await scratch('s3-skopeo-');
  const node = await s3Node();
  try {
    const img = await makeImage({ layers: [{ big: randomBytes(7 << 20) }, { small: 'two\n' }], label: 's3-skopeo' });
    const src = join(s.dir, 'src');
    await writeOciLayout(src, [{ tag: 'v1', image: img }]);
    const digestFile = join(s.dir, 'digest');
    await skopeoCopy(`oci:${src}:v1`, `docker://${node.host}/s3/skopeo:v1`, ['--digestfile', digestFile]);
    const pushed = (await readFile(digestFile, 'utf8')).trim();
    assert.equal(pushed, img.digest, 'skopeo pushed the layout manifest as it is');
    assert.equal(digestOf(await inspectRaw(`docker://${node.host}/s3/skopeo:v1`)), pushed);
    await assertInBucket(node, 's3/skopeo', 'v1', pushed);

    const back = join(s.dir, 'back');
    await skopeoCopy(`docker://${node.host}/s3/skopeo:v1`, `oci:${back}:v1`);
    assert.equal(await layoutDigest(back, 'v1'), pushed);
    for (const l of img.layers)
      assert.ok((await layoutBlob(back, l.descriptor.digest)).equals(l.bytes), l.descriptor.digest);
    assert.ok((await layoutBlob(back, img.config.descriptor.digest)).equals(img.config.bytes));
  } finally {
    await node.close();
    await s.cleanup();
  }
});

test('podman pushes to a node on S3 and pulls into fresh storage: the digest it pushed is the one it pulls and the node serves', async (t) => {
  if (!needTools(t, 'podman', 'skopeo')) return;
  const s = await scratch('s3-podman-');
  const node = await s3Node();
  try {
    const img = await makeImage({
      layers: [{ 'etc/greeting': 'hello from s3\n' }, { blob: randomBytes(2 << 20) }],
      label: 's3-podman',
    });
    const layout = join(s.dir, 'layout');
    await writeOciLayout(layout, [{ tag: 'v1', image: img }]);
    const pusher = podmanIn(join(s.dir, 'a'));
    const id = (await pusher.run(['pull', '-q', `oci:${layout}:v1`])).stdout.trim();
    const ref = `${node.host}/s3/podman:v1`;
    const digestFile = join(s.dir, 'digest');
    await pusher.run(['push', '--tls-verify=false', '--digestfile', digestFile, id, ref]);
    const pushed = (await readFile(digestFile, 'utf8')).trim();
    assert.equal(digestOf(await inspectRaw(`docker://${ref}`)), pushed);
    await assertInBucket(node, 's3/podman', 'v1', pushed);

    const puller = podmanIn(join(s.dir, 'b'));
    await puller.run(['pull', '-q', '--tls-verify=false', ref]);
    const inspected = JSON.parse((await puller.run(['image', 'inspect', ref])).stdout)[0];
    assert.equal(inspected.Digest, pushed);
    assert.equal(`sha256:${inspected.Id}`, img.config.descriptor.digest);
    assert.deepEqual(inspected.RootFS.Layers, JSON.parse(img.config.bytes.toString()).rootfs.diff_ids);
  } finally {
    await node.close();
    await s.cleanup();
  }
});

test('docker pulls from a node on S3, pushes a copy back, and pulls that again: RepoDigests match what the node serves', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  if (!hasDocker()) return t.skip('dockerd or the docker CLI is not installed');
  const s = await scratch('s3-docker-');
  const node = await s3Node();
  const daemon = await startDockerd();
  try {
    // dockerd takes Docker v2 schema 2 images; skopeo puts one on the node to start from.
    const img = await makeImage({
      layers: [{ 'etc/motd': 'docker on s3\n' }, { blob: randomBytes(6 << 20) }],
      label: 's3-docker',
    });
    const layout = join(s.dir, 'layout');
    await writeOciLayout(layout, [{ tag: 'v1', image: img }]);
    const digestFile = join(s.dir, 'digest');
    await skopeoCopy(`oci:${layout}:v1`, `docker://${node.host}/s3/base:v1`, [
      '--format',
      'v2s2',
      '--digestfile',
      digestFile,
    ]);
    const base = (await readFile(digestFile, 'utf8')).trim();

    const repoDigests = async (ref: string): Promise<string[]> =>
      JSON.parse((await daemon.docker(['image', 'inspect', ref])).stdout)[0].RepoDigests as string[];
    await daemon.docker(['pull', `${node.host}/s3/base:v1`]);
    assert.ok((await repoDigests(`${node.host}/s3/base:v1`)).includes(`${node.host}/s3/base@${base}`));

    // docker push writes its own manifest (it recompresses layers): the node must serve exactly that one.
    await daemon.docker(['tag', `${node.host}/s3/base:v1`, `${node.host}/s3/pushed:v1`]);
    const push = await daemon.docker(['push', `${node.host}/s3/pushed:v1`]);
    const pushed = /digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
    assert.ok(pushed, push.stdout);
    assert.equal(digestOf(await inspectRaw(`docker://${node.host}/s3/pushed:v1`)), pushed);
    await assertInBucket(node, 's3/pushed', 'v1', pushed);

    // Forget both and pull what docker pushed.
    await daemon.docker(['rmi', `${node.host}/s3/base:v1`, `${node.host}/s3/pushed:v1`]);
    await daemon.docker(['pull', `${node.host}/s3/pushed:v1`]);
    assert.ok((await repoDigests(`${node.host}/s3/pushed:v1`)).includes(`${node.host}/s3/pushed@${pushed}`));
    const id = JSON.parse((await daemon.docker(['image', 'inspect', `${node.host}/s3/pushed:v1`])).stdout)[0]
      .Id as string;
    assert.equal(id, img.config.descriptor.digest, 'the image is the one that went in');
  } finally {
    await daemon.stop();
    await node.close();
    await s.cleanup();
  }
});
