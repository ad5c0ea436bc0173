import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { digestOf } from '../../src/oci/digest.js';
import { parseManifest, type ImageManifest } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { DockerEngine } from '../../src/transport/docker-engine.js';
import { openDestination, openSource } from '../../src/transport/index.js';
import { dockerCli, hasDocker, loadImage, startDockerd, type TestDaemon } from '../helpers/dockerd.js';
import { makeImage, type TestImage } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';
import { needTools, run } from '../helpers/tools.js';

const sluice = fileURLToPath(new URL('../../../bin/sluice.js', import.meta.url));

function docker(t: TestContext): boolean {
  if (hasDocker()) return true;
  return needTools(t, 'dockerd', 'docker');
}

async function inspect(
  daemon: TestDaemon,
  name: string,
): Promise<{ Id: string; RepoTags: string[]; RepoDigests: string[]; RootFS: { Layers: string[] } }> {
  const r = await daemon.docker(['image', 'inspect', name]);
  return (
    JSON.parse(r.stdout) as [{ Id: string; RepoTags: string[]; RepoDigests: string[]; RootFS: { Layers: string[] } }]
  )[0];
}

function diffIds(image: TestImage): string[] {
  return (JSON.parse(image.config.bytes.toString()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
}

async function cli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, [sluice, ...args], { env });
}

test('the Engine API client lists images with RepoTags, exports by name and reports missing images', async (t) => {
  if (!docker(t)) return;
  const daemon = await startDockerd();
  const engine = new DockerEngine(daemon.host);
  try {
    const image = await makeImage({ layers: [{ 'l1.txt': 'one\n' }, { 'l2.txt': 'two\n' }], label: 'list' });
    await loadImage(daemon, image, 'sluice/listed:v1');
    await daemon.docker(['tag', 'sluice/listed:v1', 'sluice/listed:v2']);
    const listed = (await engine.listImages()).find((i) => i.id === image.config.descriptor.digest);
    assert.ok(listed, 'the loaded image is listed under its config digest');
    assert.deepEqual([...listed.repoTags].sort(), ['sluice/listed:v1', 'sluice/listed:v2']);
    assert.deepEqual(listed.repoDigests, [], 'docker load gives no RepoDigests');

    const src = await openSource('docker-daemon:sluice/listed:v2', { daemonHost: daemon.host });
    try {
      assert.deepEqual(await src.listTags!(), ['v1', 'v2']);
      assert.match(src.digestChange ?? '', /keeps no registry manifest/);
      const raw = await src.getManifest();
      const m = parseManifest(raw.bytes) as ImageManifest;
      assert.equal(raw.mediaType, MediaType.DockerManifest);
      assert.equal(m.config.digest, image.config.descriptor.digest);
      assert.deepEqual(
        m.layers.map((l) => l.digest),
        diffIds(image),
      );
    } finally {
      await src.close();
    }
    // By image ID as well (the export then has no RepoTags to choose by).
    const byId = await openSource(`docker-daemon:${image.config.descriptor.digest}`, { daemonHost: daemon.host });
    assert.equal(
      (parseManifest((await byId.getManifest()).bytes) as ImageManifest).config.digest,
      image.config.descriptor.digest,
    );
    await byId.close();

    await assert.rejects(
      openSource('docker-daemon:sluice/absent:v1', { daemonHost: daemon.host }),
      /has no image sluice\/absent:v1/,
    );
    await assert.rejects(
      openSource('docker-daemon:x:y', { daemonHost: 'unix:///tmp/sd-no-such/docker.sock' }),
      /cannot reach the Docker daemon/,
    );
  } finally {
    await engine.close();
    await daemon.stop();
  }
});

test('sluice copy docker-daemon: → Sluice registry → back into the daemon keeps the image ID', async (t) => {
  if (!docker(t)) return;
  const daemon = await startDockerd();
  const reg = await startRegistry();
  const engine = new DockerEngine(daemon.host);
  try {
    const image = await makeImage({
      layers: [{ 'app/bin': 'binary\n' }, { 'app/conf': 'conf\n' }],
      label: 'registry-trip',
    });
    await loadImage(daemon, image, 'sluice/app:v1');

    const refused = await cli([
      'copy',
      '--preserve-digests',
      '--daemon-host',
      daemon.host,
      'docker-daemon:sluice/app:v1',
      `docker://${reg.host}/team/app:v1`,
    ]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /preserve-digests.*keeps no registry manifest/s);

    const up = await cli([
      'copy',
      '--json',
      '--src-daemon-host',
      daemon.host,
      'docker-daemon:sluice/app:v1',
      `docker://${reg.host}/team/app:v1`,
    ]);
    assert.equal(up.code, 0, up.stderr);
    const summary = JSON.parse(up.stdout) as { digest: string; warnings: string[] };
    assert.ok(
      summary.warnings.some((w) => /digest changes/.test(w)),
      'the digest change is announced',
    );
    const r = await fetch(`${reg.url}/v2/team/app/manifests/v1`, { headers: { accept: MediaType.DockerManifest } });
    assert.equal(r.status, 200);
    const bytes = Buffer.from(await r.arrayBuffer());
    assert.equal(r.headers.get('docker-content-digest'), summary.digest);
    const m = parseManifest(bytes) as ImageManifest;
    assert.equal(m.config.digest, image.config.descriptor.digest, 'config digest is the daemon image ID');
    // The daemon hands out uncompressed layers; a registry gets them gzip-compressed, as docker push does.
    assert.deepEqual(
      m.layers.map((l) => l.mediaType),
      [MediaType.DockerLayerGzip, MediaType.DockerLayerGzip],
    );
    for (const [i, l] of m.layers.entries()) {
      const blob = Buffer.from(await (await fetch(`${reg.url}/v2/team/app/blobs/${l.digest}`)).arrayBuffer());
      const plain = gunzipSync(blob);
      assert.equal(digestOf(plain), diffIds(image)[i], `layer ${i} unpacks to its diff_id`);
      assert.ok(blob.length < plain.length, `layer ${i}: ${blob.length} compressed bytes for ${plain.length}`);
    }

    // docker pull checks each layer it unpacks against the config's diff_ids, and fills RepoDigests.
    await daemon.docker(['pull', `${reg.host}/team/app:v1`]);
    const listed = (await engine.listImages()).find((i) => i.id === image.config.descriptor.digest);
    assert.ok(
      listed?.repoDigests.includes(`${reg.host}/team/app@${summary.digest}`),
      `RepoDigests: ${listed?.repoDigests.join(', ')}`,
    );

    // Back into the daemon under a new name, after removing every name the image had.
    await daemon.docker(['rmi', 'sluice/app:v1', `${reg.host}/team/app:v1`]);
    assert.equal(await engine.imageId('sluice/app:v1'), undefined);
    const down = await cli([
      'copy',
      '--quiet',
      '--dest-daemon-host',
      daemon.host,
      `docker://${reg.host}/team/app:v1`,
      'docker-daemon:sluice/app:back',
    ]);
    assert.equal(down.code, 0, down.stderr);
    const back = await inspect(daemon, 'sluice/app:back');
    assert.equal(back.Id, image.config.descriptor.digest);
    assert.deepEqual(back.RootFS.Layers, diffIds(image));
  } finally {
    await engine.close();
    await reg.close();
    await daemon.stop();
  }
});

test('two daemons side by side ("host" and "nested") exchange an image through Sluice', async (t) => {
  if (!docker(t)) return;
  const host = await startDockerd();
  const nested = await startDockerd();
  try {
    const image = await makeImage({
      layers: [{ 'seed.txt': 'seeded from the host\n' }, { 'more.txt': 'x'.repeat(100_000) }],
      label: 'dind',
    });
    await loadImage(host, image, 'ci/tooling:1.2');
    assert.notEqual(
      (await run(dockerCli(), ['-H', nested.host, 'image', 'inspect', 'ci/tooling:1.2'])).code,
      0,
      'nested starts without the image',
    );

    // Source daemon from DOCKER_HOST, destination from --dest-daemon-host.
    const r = await cli(
      [
        'copy',
        '--quiet',
        '--dest-daemon-host',
        nested.host,
        'docker-daemon:ci/tooling:1.2',
        'docker-daemon:ci/tooling:1.2',
      ],
      { DOCKER_HOST: host.host },
    );
    assert.equal(r.code, 0, r.stderr);
    const a = await inspect(host, 'ci/tooling:1.2');
    const b = await inspect(nested, 'ci/tooling:1.2');
    assert.equal(b.Id, a.Id);
    assert.equal(b.Id, image.config.descriptor.digest);
    assert.deepEqual(b.RootFS.Layers, a.RootFS.Layers);

    // And back the other way, both sides named by flag, under another tag.
    const r2 = await cli([
      'copy',
      '--quiet',
      '--src-daemon-host',
      nested.host,
      '--dest-daemon-host',
      host.host,
      'docker-daemon:ci/tooling:1.2',
      'docker-daemon:ci/tooling:returned',
    ]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal((await inspect(host, 'ci/tooling:returned')).Id, image.config.descriptor.digest);
    // The layer content survives: docker save of the nested copy is read by Sluice with the original diff_ids.
    const src = await openSource('docker-daemon:ci/tooling:1.2', { daemonHost: nested.host });
    try {
      const m = parseManifest((await src.getManifest()).bytes) as ImageManifest;
      assert.deepEqual(
        m.layers.map((l) => l.digest),
        diffIds(image),
      );
    } finally {
      await src.close();
    }
  } finally {
    await nested.stop();
    await host.stop();
  }
});

test('a docker-daemon: destination refuses an image ID as its name', async () => {
  await assert.rejects(
    openDestination(`docker-daemon:sha256:${'a'.repeat(64)}`, { daemonHost: 'unix:///tmp/none.sock' }),
    /NAME:TAG/,
  );
});
