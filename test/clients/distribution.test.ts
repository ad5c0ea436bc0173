import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import {
  makeImage,
  makeMultiArch,
  pushBlob,
  pushManifest,
  writeOciLayout,
  type TestImage,
  type TestIndex,
} from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';
import { needTools } from '../helpers/tools.js';
import { inspectRaw, layoutBlob, layoutDigest, scratch, skopeoCopy, startDistribution } from '../helpers/clients.js';

/** What one registry must show for the images the other one stored. */
async function checkServes(
  url: string,
  host: string,
  outDir: string,
  img: TestImage,
  idx: TestIndex,
  dockerDigest: string,
): Promise<void> {
  const docker = await inspectRaw(`docker://${host}/lib/docker:v1`);
  assert.equal(digestOf(docker), dockerDigest);
  assert.equal(JSON.parse(docker.toString()).mediaType, MediaType.DockerManifest);
  assert.deepEqual(await inspectRaw(`docker://${host}/lib/single:v1`), img.manifest);
  assert.deepEqual(await inspectRaw(`docker://${host}/lib/single@${img.digest}`), img.manifest);
  assert.deepEqual(await inspectRaw(`docker://${host}/lib/multi:v2`), idx.manifest);

  await mkdir(outDir, { recursive: true });
  const single = join(outDir, 'single');
  await skopeoCopy(`docker://${host}/lib/single:v1`, `oci:${single}:x`);
  assert.equal(await layoutDigest(single, 'x'), img.digest);
  assert.deepEqual(await layoutBlob(single, img.config.descriptor.digest), img.config.bytes);
  for (const l of img.layers) assert.deepEqual(await layoutBlob(single, l.descriptor.digest), l.bytes);

  const multi = join(outDir, 'multi');
  await skopeoCopy(`docker://${host}/lib/multi:v2`, `oci:${multi}:x`, ['--all']);
  assert.equal(await layoutDigest(multi, 'x'), idx.digest);
  for (const child of idx.images) {
    assert.deepEqual(await layoutBlob(multi, child.digest), child.manifest);
    for (const l of child.layers) assert.deepEqual(await layoutBlob(multi, l.descriptor.digest), l.bytes);
  }

  assert.deepEqual(await (await fetch(`${url}/v2/lib/single/tags/list`)).json(), {
    name: 'lib/single',
    tags: ['latest', 'v1'],
  });
  assert.deepEqual(await (await fetch(`${url}/v2/lib/multi/tags/list`)).json(), { name: 'lib/multi', tags: ['v2'] });
  assert.deepEqual(await (await fetch(`${url}/v2/_catalog`)).json(), {
    repositories: ['lib/docker', 'lib/multi', 'lib/single'],
  });
}

async function makeInputs(dir: string, label: string): Promise<{ src: string; img: TestImage; idx: TestIndex }> {
  const img = await makeImage({ layers: [{ 'a.txt': `a ${label}\n` }, { 'b.txt': `b ${label}\n` }], label });
  const idx = await makeMultiArch(label);
  const src = join(dir, 'src');
  await writeOciLayout(src, [
    { tag: 'single', image: img },
    { tag: 'multi', image: idx },
  ]);
  return { src, img, idx };
}

/** Pushes the inputs with skopeo; returns the digest of the Docker v2s2 conversion (lib/docker:v1). */
async function pushInputs(host: string, src: string): Promise<string> {
  await skopeoCopy(`oci:${src}:single`, `docker://${host}/lib/single:v1`);
  await skopeoCopy(`oci:${src}:single`, `docker://${host}/lib/single:latest`);
  await skopeoCopy(`oci:${src}:multi`, `docker://${host}/lib/multi:v2`, ['--all']);
  const digestFile = join(src, 'docker.digest');
  await skopeoCopy(`oci:${src}:single`, `docker://${host}/lib/docker:v1`, [
    '--format',
    'v2s2',
    '--digestfile',
    digestFile,
  ]);
  return (await readFile(digestFile, 'utf8')).trim();
}

test('Distribution 2.8 serves, from the same root directory, what Sluice stored', async (t) => {
  if (!needTools(t, 'skopeo', 'docker-registry')) return;
  const s = await scratch();
  const root = join(s.dir, 'data');
  let dist: Awaited<ReturnType<typeof startDistribution>> | undefined;
  try {
    const { src, img, idx } = await makeInputs(s.dir, 'sluice-first');
    const reg = await startRegistry({}, root);
    let referrer: Buffer;
    let dockerDigest = '';
    try {
      dockerDigest = await pushInputs(reg.host, src);
      // An artifact naming the image as its subject: Sluice's referrers index must not disturb Distribution.
      const empty = Buffer.from('{}');
      const note = Buffer.from('a signature, say');
      await pushBlob(reg.url, 'lib/single', empty);
      await pushBlob(reg.url, 'lib/single', note);
      referrer = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.OciManifest,
          artifactType: 'application/vnd.example.note',
          config: { mediaType: MediaType.OciEmpty, digest: digestOf(empty), size: empty.length },
          layers: [{ mediaType: 'text/plain', digest: digestOf(note), size: note.length }],
          subject: { mediaType: img.mediaType, digest: img.digest, size: img.manifest.length },
        }),
      );
      assert.equal(
        (await pushManifest(reg.url, 'lib/single', digestOf(referrer), referrer, MediaType.OciManifest)).status,
        201,
      );
      const listed = (await (await fetch(`${reg.url}/v2/lib/single/referrers/${img.digest}`)).json()) as {
        manifests: { digest: string }[];
      };
      assert.deepEqual(
        listed.manifests.map((m) => m.digest),
        [digestOf(referrer)],
      );
    } finally {
      await reg.close();
    }
    dist = await startDistribution(root);
    await checkServes(dist.url, dist.host, join(s.dir, 'out'), img, idx, dockerDigest);
    assert.deepEqual(await inspectRaw(`docker://${dist.host}/lib/single@${digestOf(referrer!)}`), referrer!);
  } finally {
    await dist?.stop();
    await s.cleanup();
  }
});

test('Sluice serves, from the same root directory, what Distribution 2.8 stored', async (t) => {
  if (!needTools(t, 'skopeo', 'docker-registry')) return;
  const s = await scratch();
  const root = join(s.dir, 'data');
  try {
    const { src, img, idx } = await makeInputs(s.dir, 'distribution-first');
    const dist = await startDistribution(root);
    let dockerDigest: string;
    try {
      dockerDigest = await pushInputs(dist.host, src);
    } finally {
      await dist.stop();
    }
    const reg = await startRegistry({}, root);
    try {
      await checkServes(reg.url, reg.host, join(s.dir, 'out'), img, idx, dockerDigest);
      // And Sluice keeps writing into that tree: a new tag on Distribution's repository.
      await skopeoCopy(`docker://${reg.host}/lib/single:v1`, `docker://${reg.host}/lib/single:v3`);
      assert.deepEqual(await (await fetch(`${reg.url}/v2/lib/single/tags/list`)).json(), {
        name: 'lib/single',
        tags: ['latest', 'v1', 'v3'],
      });
    } finally {
      await reg.close();
    }
  } finally {
    await s.cleanup();
  }
});

test('Distribution 2.8 serves a partial mirror (index-only plus one platform) that Sluice stored', async (t) => {
  if (!needTools(t, 'skopeo', 'docker-registry')) return;
  const s = await scratch();
  const root = join(s.dir, 'data');
  let dist: Awaited<ReturnType<typeof startDistribution>> | undefined;
  try {
    const idx = await makeMultiArch('partial');
    const arm = idx.images[1]!;
    const src = join(s.dir, 'src');
    await writeOciLayout(src, [{ tag: 'multi', image: idx }]);
    const armFlags = ['--override-os', 'linux', '--override-arch', 'arm64', '--override-variant', 'v8'];
    const reg = await startRegistry({ validation: { manifests: { indexes: { platforms: 'none' } } } }, root);
    try {
      await skopeoCopy(`oci:${src}:multi`, `docker://${reg.host}/mirror/app:v1`, ['--multi-arch', 'index-only']);
      await skopeoCopy(`oci:${src}:multi`, `docker://${reg.host}/mirror/app@${arm.digest}`, armFlags);
    } finally {
      await reg.close();
    }
    dist = await startDistribution(root);
    assert.deepEqual(await inspectRaw(`docker://${dist.host}/mirror/app:v1`), idx.manifest);
    const out = join(s.dir, 'out');
    await skopeoCopy(`docker://${dist.host}/mirror/app:v1`, `oci:${out}:arm`, armFlags);
    assert.equal(await layoutDigest(out, 'arm'), arm.digest);
    const missing = await fetch(`${dist.url}/v2/mirror/app/manifests/${idx.images[2]!.digest}`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { errors: { code: string }[] }).errors[0]!.code, 'MANIFEST_UNKNOWN');
    assert.deepEqual(await (await fetch(`${dist.url}/v2/_catalog`)).json(), { repositories: ['mirror/app'] });
    assert.deepEqual(await (await fetch(`${dist.url}/v2/mirror/app/tags/list`)).json(), {
      name: 'mirror/app',
      tags: ['v1'],
    });
  } finally {
    await dist?.stop();
    await s.cleanup();
  }
});
