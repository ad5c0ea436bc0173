import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { startRegistry } from '../helpers/registry.js';
import { runOk } from '../helpers/tools.js';
import { needTools } from '../helpers/tools.js';
import { inspectRaw, layoutBlob, layoutDigest, podmanIn, scratch, skopeoCopy } from '../helpers/clients.js';

/** Reads a podman-mounted image's file, unmounting afterwards. */
async function mountedFile(p: ReturnType<typeof podmanIn>, ref: string, path: string): Promise<string> {
  const mount = (await p.run(['image', 'mount', ref])).stdout.trim();
  try {
    return await readFile(join(mount, path), 'utf8');
  } finally {
    await p.run(['image', 'unmount', ref]);
  }
}

test('an umoci-made image (manifest without mediaType) goes through Sluice to skopeo and podman unchanged', async (t) => {
  if (!needTools(t, 'umoci', 'skopeo', 'podman')) return;
  const s = await scratch('su-');
  const reg = await startRegistry();
  try {
    const layout = join(s.dir, 'layout');
    await writeFile(join(s.dir, 'note.txt'), 'made by umoci\n');
    await runOk('umoci', ['init', '--layout', layout]);
    await runOk('umoci', ['new', '--image', `${layout}:t`]);
    await runOk('umoci', ['insert', '--image', `${layout}:t`, join(s.dir, 'note.txt'), '/note.txt']);
    await runOk('umoci', ['config', '--image', `${layout}:t`, '--os', 'linux', '--architecture', 'arm64']);
    await runOk('umoci', ['gc', '--layout', layout]);
    const digest = await layoutDigest(layout, 't');
    const bytes = await layoutBlob(layout, digest);
    assert.equal(JSON.parse(bytes.toString()).mediaType, undefined, 'umoci writes no mediaType field');

    const ref = `${reg.host}/tools/umoci:t`;
    await skopeoCopy(`oci:${layout}:t`, `docker://${ref}`);
    assert.deepEqual(await inspectRaw(`docker://${ref}`), bytes);
    const head = await fetch(`${reg.url}/v2/tools/umoci/manifests/t`, {
      method: 'HEAD',
      headers: { accept: `${MediaType.OciManifest}, ${MediaType.DockerManifest}` },
    });
    assert.equal(head.status, 200);
    assert.equal(
      head.headers.get('content-type'),
      MediaType.OciManifest,
      'served as an OCI manifest, what its shape implies',
    );
    assert.equal(head.headers.get('docker-content-digest'), digest);

    const p = podmanIn(join(s.dir, 'p'));
    await p.run(['pull', '-q', '--tls-verify=false', '--arch', 'arm64', ref]);
    assert.equal(JSON.parse((await p.run(['image', 'inspect', ref])).stdout)[0].Digest, digest);
    assert.equal(await mountedFile(p, ref, 'note.txt'), 'made by umoci\n');
  } finally {
    await reg.close();
    await s.cleanup();
  }
});

test('buildah pushes an image and a manifest list (--all) into Sluice; podman pulls a platform out of the list', async (t) => {
  if (!needTools(t, 'buildah', 'skopeo', 'podman')) return;
  const s = await scratch('sb-');
  const reg = await startRegistry();
  const b = (args: string[]) =>
    runOk('buildah', [
      '--storage-driver',
      'vfs',
      '--root',
      join(s.dir, 'br'),
      '--runroot',
      join(s.dir, 'brr'),
      ...args,
    ]);
  try {
    const built: Record<string, string> = {};
    for (const arch of ['amd64', 'arm64']) {
      await writeFile(join(s.dir, `${arch}.txt`), `built for ${arch}\n`);
      const c = (await b(['from', 'scratch'])).stdout.trim();
      await b(['copy', c, join(s.dir, `${arch}.txt`), '/arch.txt']);
      await b(['config', '--os', 'linux', '--arch', arch, '--label', `arch=${arch}`, c]);
      built[arch] = (await b(['commit', '-q', c, `img-${arch}`])).stdout.trim();
    }
    await b(['manifest', 'create', 'list']);
    for (const arch of ['amd64', 'arm64'])
      await b(['manifest', 'add', 'list', `containers-storage:localhost/img-${arch}:latest`]);

    const single = `${reg.host}/build/single:v1`;
    await b(['push', '--tls-verify=false', '--digestfile', join(s.dir, 'd1'), 'img-arm64', `docker://${single}`]);
    const singleDigest = (await readFile(join(s.dir, 'd1'), 'utf8')).trim();
    assert.equal(digestOf(await inspectRaw(`docker://${single}`)), singleDigest);

    const list = `${reg.host}/build/list:v1`;
    await b([
      'manifest',
      'push',
      '--all',
      '--tls-verify=false',
      '--digestfile',
      join(s.dir, 'd2'),
      'list',
      `docker://${list}`,
    ]);
    const listDigest = (await readFile(join(s.dir, 'd2'), 'utf8')).trim();
    const listBytes = await inspectRaw(`docker://${list}`);
    assert.equal(digestOf(listBytes), listDigest);
    const children = JSON.parse(listBytes.toString()).manifests as {
      digest: string;
      platform: { architecture: string };
    }[];
    assert.deepEqual(children.map((c) => c.platform.architecture).sort(), ['amd64', 'arm64']);

    // Registry to registry: the list and every child keep their bytes.
    await skopeoCopy(`docker://${list}`, `docker://${reg.host}/build/copy:v1`, ['--all']);
    assert.deepEqual(await inspectRaw(`docker://${reg.host}/build/copy:v1`), listBytes);
    for (const c of children) {
      assert.deepEqual(
        await inspectRaw(`docker://${reg.host}/build/copy@${c.digest}`),
        await inspectRaw(`docker://${reg.host}/build/list@${c.digest}`),
      );
    }

    for (const arch of ['amd64', 'arm64']) {
      const p = podmanIn(join(s.dir, `p-${arch}`));
      await p.run(['pull', '-q', '--tls-verify=false', '--arch', arch, list]);
      const inspected = JSON.parse((await p.run(['image', 'inspect', list])).stdout)[0];
      assert.equal(inspected.Id, built[arch], `podman got the ${arch} image buildah built`);
      // podman records the list's digest as the image's and the child's among its RepoDigests.
      const child = children.find((c) => c.platform.architecture === arch)!.digest;
      assert.equal(inspected.Digest, listDigest);
      assert.ok(
        (inspected.RepoDigests as string[]).includes(`${reg.host}/build/list@${child}`),
        JSON.stringify(inspected.RepoDigests),
      );
      assert.equal(await mountedFile(p, list, 'arch.txt'), `built for ${arch}\n`);
    }
  } finally {
    await reg.close();
    await s.cleanup();
  }
});
