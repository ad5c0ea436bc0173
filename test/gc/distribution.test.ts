import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Collector } from '../../src/gc/collector.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { skopeoCopy, startDistribution } from '../helpers/clients.js';
import { makeImage, pushImage, writeOciLayout, type TestImage } from '../helpers/images.js';
import { makeArtifact } from '../helpers/oci-http.js';
import { filesystemOnly, startRegistry } from '../helpers/registry.js';
import { needTools, runOk } from '../helpers/tools.js';

/** Runs Distribution 2.8.2's offline `garbage-collect` on a filesystem root. */
async function distributionGc(root: string, deleteUntagged: boolean): Promise<void> {
  const cfg = join(root, '..', `gc-${Date.now()}.yml`);
  await writeFile(
    cfg,
    `version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: ${root}}, delete: {enabled: true}}\n`,
  );
  await runOk('docker-registry', ['garbage-collect', ...(deleteUntagged ? ['-m'] : []), cfg]);
}

/** Sluice's collector with no grace: the record pass, then the sweep pass. */
async function sluiceGc(root: string): Promise<void> {
  const c = new Collector(new FilesystemDriver(root));
  for (let i = 0; i < 2; i++) await c.collect({ graceMs: 0, deleteUntagged: true, dryRun: false });
}

async function servesWhole(url: string, repo: string, tag: string, img: TestImage): Promise<void> {
  const m = await fetch(`${url}/v2/${repo}/manifests/${tag}`, { headers: { accept: img.mediaType } });
  assert.equal(m.status, 200, `${repo}:${tag}`);
  assert.equal(Buffer.from(await m.arrayBuffer()).equals(img.manifest), true);
  for (const b of [img.config, ...img.layers]) {
    const r = await fetch(`${url}/v2/${repo}/blobs/${b.descriptor.digest}`);
    assert.equal(r.status, 200, b.descriptor.digest);
    assert.equal(Buffer.from(await r.arrayBuffer()).equals(b.bytes), true);
  }
}

async function tempRoot(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-gc-compat-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'root');
}

test('a root Sluice wrote and Distribution 2.8.2 garbage-collect -m collected is still served whole by Sluice', async (t) => {
  if (filesystemOnly(t, 'Distribution garbage-collect runs on the directory') || !needTools(t, 'docker-registry'))
    return;
  const root = await tempRoot(t);
  const reg = await startRegistry({}, root);
  t.after(() => reg.close());
  const [kept, old, current] = [
    await makeImage({ label: 'kept' }),
    await makeImage({ label: 'old' }),
    await makeImage({ label: 'current' }),
  ];
  await pushImage(reg.url, 'app', 'v1', kept);
  await pushImage(reg.url, 'app', 'latest', old);
  await pushImage(reg.url, 'app', 'latest', current);
  await distributionGc(root, true);
  await servesWhole(reg.url, 'app', 'v1', kept);
  await servesWhole(reg.url, 'app', 'latest', current);
  assert.equal(
    (await fetch(`${reg.url}/v2/app/manifests/${old.digest}`, { headers: { accept: old.mediaType } })).status,
    404,
  );
});

test('a root Distribution 2.8.2 wrote and sluice collected with delete-untagged is still served whole by Distribution', async (t) => {
  if (filesystemOnly(t, 'Distribution serves the directory') || !needTools(t, 'docker-registry', 'skopeo')) return;
  const root = await tempRoot(t);
  const dist = await startDistribution(root);
  t.after(() => dist.stop());
  const [kept, old, current] = [
    await makeImage({ label: 'd kept' }),
    await makeImage({ label: 'd old' }),
    await makeImage({ label: 'd current' }),
  ];
  // Distribution 2.8 takes no monolithic POST upload: skopeo pushes, as users do.
  for (const [tag, img] of [
    ['v1', kept],
    ['latest', old],
    ['latest', current],
  ] as const) {
    const layout = join(root, '..', `layout-${img.digest.slice(7, 19)}`);
    await writeOciLayout(layout, [{ tag: 'x', image: img }]);
    await skopeoCopy(`oci:${layout}:x`, `docker://${dist.host}/app:${tag}`);
  }
  await sluiceGc(root);
  await servesWhole(dist.url, 'app', 'v1', kept);
  await servesWhole(dist.url, 'app', 'latest', current);
  assert.equal(
    (await fetch(`${dist.url}/v2/app/manifests/${old.digest}`, { headers: { accept: old.mediaType } })).status,
    404,
  );
});

test('Distribution 2.8.2 garbage-collect -m deletes a referrer of a tagged image, which Sluice keeps', async (t) => {
  if (filesystemOnly(t, 'Distribution garbage-collect runs on the directory') || !needTools(t, 'docker-registry'))
    return;
  const root = await tempRoot(t);
  const reg = await startRegistry({}, root);
  t.after(() => reg.close());
  const img = await makeImage({ label: 'signed' });
  await pushImage(reg.url, 'app', 'v1', img);
  const sig = makeArtifact({
    artifactType: 'application/vnd.example.signature',
    payload: 'sig',
    subject: { mediaType: img.mediaType, digest: img.digest, size: img.manifest.length },
  });
  await pushImage(reg.url, 'app', sig.digest, sig);
  const listed = async (): Promise<string[]> => {
    const r = await fetch(`${reg.url}/v2/app/referrers/${img.digest}`);
    return ((await r.json()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest);
  };
  await sluiceGc(root);
  assert.deepEqual(await listed(), [sig.digest], 'Sluice keeps a referrer whose subject is live');
  await distributionGc(root, true);
  assert.deepEqual(
    await listed(),
    [],
    'Distribution 2.8.2 knows no referrers: to it the signature is an untagged manifest',
  );
  await servesWhole(reg.url, 'app', 'v1', img);
});
