import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';
import { needTools } from '../helpers/tools.js';
import { inspectRaw, podmanIn, scratch } from '../helpers/clients.js';

for (const format of ['oci', 'v2s2'] as const) {
  test(`podman push --format ${format} to Sluice, then pull into fresh storage with the same digest and content`, async (t) => {
    if (!needTools(t, 'podman', 'skopeo')) return;
    const s = await scratch('sp-');
    const reg = await startRegistry();
    try {
      const img = await makeImage({
        layers: [{ 'etc/greeting': `hello ${format}\n` }, { 'usr/share/doc/readme': 'second layer\n' }],
        label: `podman-${format}`,
      });
      const layout = join(s.dir, 'layout');
      await writeOciLayout(layout, [{ tag: 'v1', image: img }]);
      const pusher = podmanIn(join(s.dir, 'a'));
      const id = (await pusher.run(['pull', '-q', `oci:${layout}:v1`])).stdout.trim();
      // podman's image ID is the config digest, which no conversion changes.
      assert.equal(`sha256:${id}`, img.config.descriptor.digest);

      const ref = `${reg.host}/pod/${format}:v1`;
      const digestFile = join(s.dir, 'digest');
      await pusher.run(['push', '--tls-verify=false', '--format', format, '--digestfile', digestFile, id, ref]);
      const pushed = (await readFile(digestFile, 'utf8')).trim();

      const raw = await inspectRaw(`docker://${ref}`);
      assert.equal(digestOf(raw), pushed, 'Sluice serves the bytes podman pushed');
      const m = JSON.parse(raw.toString('utf8'));
      assert.equal(m.mediaType, format === 'oci' ? MediaType.OciManifest : MediaType.DockerManifest);
      assert.equal(m.config.digest, img.config.descriptor.digest);
      assert.equal(m.layers.length, 2);

      const puller = podmanIn(join(s.dir, 'b'));
      await puller.run(['pull', '-q', '--tls-verify=false', ref]);
      const inspected = JSON.parse((await puller.run(['image', 'inspect', ref])).stdout)[0];
      assert.equal(inspected.Digest, pushed);
      assert.equal(`sha256:${inspected.Id}`, img.config.descriptor.digest);
      assert.deepEqual(inspected.RootFS.Layers, JSON.parse(img.config.bytes.toString()).rootfs.diff_ids);
      assert.ok((inspected.RepoDigests as string[]).includes(`${reg.host}/pod/${format}@${pushed}`));

      // The files themselves, unpacked by podman from the layers Sluice served.
      const mount = (await puller.run(['image', 'mount', ref])).stdout.trim();
      try {
        assert.equal(await readFile(join(mount, 'etc/greeting'), 'utf8'), `hello ${format}\n`);
        assert.equal(await readFile(join(mount, 'usr/share/doc/readme'), 'utf8'), 'second layer\n');
      } finally {
        await puller.run(['image', 'unmount', ref]);
      }

      // Pulling by digest gives the same image.
      await puller.run(['pull', '-q', '--tls-verify=false', `${reg.host}/pod/${format}@${pushed}`]);
    } finally {
      await reg.close();
      await s.cleanup();
    }
  });
}
