import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { makeMultiArch, writeOciLayout } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';
import { needTools } from '../helpers/tools.js';
import { inspectRaw, layoutDigest, scratch, skopeoCopy, skopeoMay } from '../helpers/clients.js';

// makeMultiArch's platforms, in order: linux/amd64, linux/arm64/v8, linux/s390x.
const ARM = ['--override-os', 'linux', '--override-arch', 'arm64', '--override-variant', 'v8'];

test('skopeo --multi-arch index-only is refused with MANIFEST_BLOB_UNKNOWN under the default platforms: all', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const s = await scratch();
  const reg = await startRegistry();
  try {
    const idx = await makeMultiArch('index-only-all');
    const src = join(s.dir, 'src');
    await writeOciLayout(src, [{ tag: 'multi', image: idx }]);
    const r = await skopeoMay([
      'copy',
      '--dest-tls-verify=false',
      '--multi-arch',
      'index-only',
      `oci:${src}:multi`,
      `docker://${reg.host}/mirror/app:v1`,
    ]);
    assert.notEqual(r.code, 0, 'skopeo must fail');
    // skopeo prints MANIFEST_BLOB_UNKNOWN by its text, followed by Sluice's message.
    assert.match(
      r.stderr,
      /manifest blob unknown: manifest for linux\/amd64 sha256:[0-9a-f]{64} is not in repository mirror\/app/,
    );
    assert.match(r.stderr, /validation\.manifests\.indexes/);
    const direct = await fetch(`${reg.url}/v2/mirror/app/manifests/v1`);
    assert.equal(direct.status, 404);
    await direct.arrayBuffer();
    // Nothing half-stored: the index is no revision of the repository.
    const byDigest = await fetch(`${reg.url}/v2/mirror/app/manifests/${idx.digest}`);
    assert.equal(byDigest.status, 404);
    await byDigest.arrayBuffer();
  } finally {
    await reg.close();
    await s.cleanup();
  }
});

test('with platforms: none an index-only mirror plus one platform serves that platform and names the missing ones', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const s = await scratch();
  const reg = await startRegistry({ validation: { manifests: { indexes: { platforms: 'none' } } } });
  try {
    const idx = await makeMultiArch('index-only-none');
    const [amd, arm, s390] = idx.images as [(typeof idx.images)[0], (typeof idx.images)[0], (typeof idx.images)[0]];
    const src = join(s.dir, 'src');
    await writeOciLayout(src, [{ tag: 'multi', image: idx }]);
    const dest = `${reg.host}/mirror/app`;

    await skopeoCopy(`oci:${src}:multi`, `docker://${dest}:v1`, ['--multi-arch', 'index-only']);
    assert.deepEqual(await inspectRaw(`docker://${dest}:v1`), idx.manifest, 'the index keeps its bytes and digest');
    // skopeo picks the arm64 child out of the index and pushes it under its own digest.
    await skopeoCopy(`oci:${src}:multi`, `docker://${dest}@${arm.digest}`, ARM);
    assert.deepEqual(await inspectRaw(`docker://${dest}@${arm.digest}`), arm.manifest);

    // Pulling the stored platform through the tag resolves the index to that child.
    const out = join(s.dir, 'out');
    await skopeoCopy(`docker://${dest}:v1`, `oci:${out}:arm`, ARM);
    assert.equal(await layoutDigest(out, 'arm'), arm.digest);

    // A missing platform, by digest and through the tag: MANIFEST_UNKNOWN naming platform and index.
    for (const [missing, platform] of [
      [s390, 'linux/s390x'],
      [amd, 'linux/amd64'],
    ] as const) {
      const r = await fetch(`${reg.url}/v2/mirror/app/manifests/${missing.digest}`);
      assert.equal(r.status, 404);
      const body = (await r.json()) as { errors: { code: string; message: string }[] };
      assert.equal(body.errors[0]!.code, 'MANIFEST_UNKNOWN');
      assert.ok(body.errors[0]!.message.includes(platform), body.errors[0]!.message);
      assert.ok(body.errors[0]!.message.includes(idx.digest), body.errors[0]!.message);

      const inspected = await skopeoMay([
        'inspect',
        '--raw',
        '--tls-verify=false',
        `docker://${dest}@${missing.digest}`,
      ]);
      assert.notEqual(inspected.code, 0);
      assert.ok(inspected.stderr.includes(`manifest unknown: ${platform} of index ${idx.digest}`), inspected.stderr);
    }
    const pulled = await skopeoMay([
      'copy',
      '--src-tls-verify=false',
      '--override-arch',
      's390x',
      `docker://${dest}:v1`,
      `oci:${join(s.dir, 'none')}:x`,
    ]);
    assert.notEqual(pulled.code, 0);
    assert.ok(pulled.stderr.includes(`manifest unknown: linux/s390x of index ${idx.digest}`), pulled.stderr);
  } finally {
    await reg.close();
    await s.cleanup();
  }
});

test('with platforms: list an index-only mirror is accepted once the listed platforms are stored', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const s = await scratch();
  const reg = await startRegistry({
    validation: {
      manifests: { indexes: { platforms: 'list', platformlist: [{ os: 'linux', architecture: 'arm64' }] } },
    },
  });
  try {
    const idx = await makeMultiArch('index-only-list');
    const arm = idx.images[1]!;
    const src = join(s.dir, 'src');
    await writeOciLayout(src, [{ tag: 'multi', image: idx }]);
    const dest = `${reg.host}/mirror/list`;

    const early = await skopeoMay([
      'copy',
      '--dest-tls-verify=false',
      '--multi-arch',
      'index-only',
      `oci:${src}:multi`,
      `docker://${dest}:v1`,
    ]);
    assert.notEqual(early.code, 0, 'refused while linux/arm64 is missing');
    assert.match(early.stderr, /manifest blob unknown: manifest for linux\/arm64\/v8 sha256:/);

    await skopeoCopy(`oci:${src}:multi`, `docker://${dest}@${arm.digest}`, ARM);
    await skopeoCopy(`oci:${src}:multi`, `docker://${dest}:v1`, ['--multi-arch', 'index-only']);
    assert.deepEqual(await inspectRaw(`docker://${dest}:v1`), idx.manifest);
  } finally {
    await reg.close();
    await s.cleanup();
  }
});
