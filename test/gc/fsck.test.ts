import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { digestOf, type Digest } from '../../src/oci/digest.js';
import type { RepositoryName } from '../../src/oci/name.js';
import {
  blobDataPath,
  referrerLinkPath,
  repoPath,
  revisionLinkPath,
  tagCurrentPath,
  uploadPath,
  uploadStartedAtPath,
} from '../../src/storage/layout.js';
import { layoutBlob, layoutDigest, scratch, skopeoCopy } from '../helpers/clients.js';
import { gcConfigFor } from '../helpers/gc.js';
import { startHostileUpstream } from '../helpers/hostile-upstream.js';
import { makeImage, pushAsReferrer, pushImage, type TestImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { sluice } from '../helpers/sluice-cli.js';
import { needTools } from '../helpers/tools.js';

const R = (name: string): RepositoryName => name as RepositoryName;

interface Problem {
  kind: string;
  path: string;
  digest?: string;
  neededBy?: string[];
}
interface Report {
  problems: Problem[];
  hashed: number;
  repairs?: { kind: string; digest?: string; repaired: boolean; detail: string }[];
}

async function fsckJson(
  config: string,
  ...flags: string[]
): Promise<{ code: number | null; report: Report; stderr: string }> {
  const r = await sluice(['fsck', '--json', ...flags, config]);
  assert.ok(r.stdout.trim().startsWith('{'), `${r.stdout}\n${r.stderr}`);
  return { code: r.code, report: JSON.parse(r.stdout) as Report, stderr: r.stderr };
}

/** Replaces a stored blob's bytes with others of the same length (one byte changed): only a hash can tell. */
async function corrupt(reg: TestRegistry, d: Digest): Promise<Buffer> {
  const bytes = Buffer.from((await reg.ctx.driver.getContent(blobDataPath(d)))!);
  bytes[bytes.length >> 1] ^= 0xff;
  await reg.ctx.driver.putContent(blobDataPath(d), bytes);
  return bytes;
}

const kinds = (r: Report) => r.problems.map((p) => `${p.kind} ${p.digest ?? p.path}`).sort();

test('sluice fsck reports a corrupt blob, a deleted blob and broken links, and exits non-zero', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const img = await makeImage({
    label: 'fsck',
    layers: [{ a: Buffer.alloc(64 * 1024, 1) }, { b: 'two' }, { c: 'three' }],
  });
  const other = await makeImage({ label: 'fsck-other' });
  const third = await makeImage({ label: 'fsck-third' });
  await pushImage(reg.url, 'app', 'v1', img);
  await pushImage(reg.url, 'app', 'v2', other);
  await pushImage(reg.url, 'team/lib', 'v1', third);
  const config = await gcConfigFor(reg);
  const clean = await sluice(['fsck', config]);
  assert.equal(clean.code, 0, clean.stdout + clean.stderr);
  assert.match(clean.stdout, /^ok: 2 repositories, 3 tags, 3 manifests, 8 blobs/m);

  const [l0, l1] = img.layers.map((l) => l.descriptor.digest);
  await corrupt(reg, l0!);
  await reg.ctx.driver.delete(blobDataPath(l1!));
  await reg.ctx.driver.putContent(tagCurrentPath(R('app'), 'v2'), Buffer.from('not a digest'));
  await reg.ctx.driver.putContent(revisionLinkPath(R('team/lib'), third.digest), Buffer.from(other.digest));
  const full = await fsckJson(config, '--full');
  assert.equal(full.code, 1);
  assert.deepEqual(
    kinds(full.report),
    [
      `blob-corrupt ${l0}`,
      `blob-missing ${l1}`,
      `link-invalid ${tagCurrentPath(R('app'), 'v2')}`,
      `link-invalid ${third.digest}`,
    ].sort(),
  );
  assert.deepEqual(full.report.problems.find((p) => p.kind === 'blob-missing')!.neededBy, ['app:v1']);
  // Sampling checks every size but hashes only the sample: with none hashed the same-size corruption goes unseen.
  const none = await fsckJson(config, '--sample', '0');
  assert.equal(none.report.hashed, 0);
  assert.deepEqual(
    kinds(none.report),
    kinds(full.report).filter((k) => !k.startsWith('blob-corrupt')),
  );
  const text = await sluice(['fsck', config, '--full']);
  assert.equal(text.code, 1);
  assert.match(
    text.stdout,
    new RegExp(`^blob-corrupt: blob ${l0}: its bytes have digest sha256:[0-9a-f]{64} \\(needed by app:v1\\)`, 'm'),
  );
  assert.match(text.stdout, /^4 problems: /m);
});

test('sluice fsck reports referrers whose subject is gone, referrer listings of missing manifests, and stale or broken upload sessions', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const app = R('app');
  const [subject, sig, gone, goneSig] = await Promise.all(
    ['subject', 'sig', 'gone', 'gone-sig'].map((label) => makeImage({ label })),
  );
  await pushImage(reg.url, 'app', 'v1', subject!);
  const liveReferrer = await pushAsReferrer(reg.url, 'app', sig!, subject!);
  await pushImage(reg.url, 'app', gone!.digest, gone!);
  const orphan = await pushAsReferrer(reg.url, 'app', goneSig!, gone!);
  const startUpload = async (): Promise<string> => {
    const r = await fetch(`${reg.url}/v2/app/blobs/uploads/`, { method: 'POST' });
    assert.equal(r.status, 202);
    return new URL(r.headers.get('location')!, reg.url).pathname.split('/').pop()!;
  };
  const [stale, broken] = [await startUpload(), await startUpload()];
  const config = await gcConfigFor(reg);
  // A live referrer and fresh sessions are no problem.
  const clean = await fsckJson(config);
  assert.equal(clean.code, 0, JSON.stringify(clean.report.problems));

  await reg.ctx.driver.delete(revisionLinkPath(app, gone!.digest).replace(/\/link$/, ''));
  const missing = digestOf(Buffer.from('never stored'));
  await reg.ctx.driver.putContent(referrerLinkPath(app, subject!.digest, missing), Buffer.from(missing));
  const old = new Date(Date.now() - 200 * 3600_000).toISOString();
  await reg.ctx.driver.putContent(uploadStartedAtPath(app, stale), Buffer.from(old));
  await reg.ctx.driver.delete(uploadStartedAtPath(app, broken));
  await reg.ctx.driver.putContent(`${repoPath(app)}/_uploads/not-a-session/data`, Buffer.from('x'));
  const found = await fsckJson(config);
  assert.equal(found.code, 1);
  assert.deepEqual(
    kinds(found.report),
    [
      `referrer-orphan ${orphan}`,
      `referrer-dangling ${missing}`,
      `upload-stale ${uploadPath(app, stale)}`,
      `upload-broken ${uploadPath(app, broken)}`,
      `upload-broken ${repoPath(app)}/_uploads/not-a-session`,
    ].sort(),
  );
  assert.ok(!found.report.problems.some((p) => p.digest === liveReferrer));
});

/** A cache of `upstreamUrl` holding docker.io/library/app:1 (pulled through it with skopeo), and an fsck config for it. */
async function filledCache(
  t: import('node:test').TestContext,
  upstreamUrl: string,
  work: string,
): Promise<{ cache: TestRegistry; config: string }> {
  const cache = await startRegistry({
    upstreams: { 'docker.io': { url: upstreamUrl, ttl: '1h' } },
    flows: [{ images: ['docker.io/**'] }],
  });
  t.after(() => cache.close());
  await skopeoCopy(`docker://${cache.host}/docker.io/library/app:1`, `oci:${join(work, 'first')}:app`);
  const storage = (JSON.parse(await readFile(await gcConfigFor(cache), 'utf8')) as { storage: unknown }).storage;
  const config = join(tmpdir(), `sluice-fsck-${randomUUID()}.yml`);
  await writeFile(
    config,
    JSON.stringify({
      version: 0.1,
      storage,
      upstreams: { 'docker.io': { url: upstreamUrl } },
      flows: [{ images: ['docker.io/**'] }],
    }),
  );
  return { cache, config };
}

test('sluice fsck --repair fetches what a cache lost from its upstream; the image then pulls whole with the upstream gone', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const work = await scratch('sluice-fsck-');
  t.after(() => work.cleanup());
  const up = await startRegistry();
  let upOpen = true;
  t.after(() => (upOpen ? up.close() : undefined));
  const img = await makeImage({ label: 'repair', layers: [{ a: Buffer.alloc(256 * 1024, 7) }, { b: 'small' }] });
  await pushImage(up.url, 'library/app', '1', img);
  const { cache, config } = await filledCache(t, up.url, work.dir);
  const [l0, l1] = img.layers.map((l) => l.descriptor.digest) as [Digest, Digest];
  await cache.ctx.driver.delete(blobDataPath(l0));
  await corrupt(cache, l1);
  await cache.ctx.driver.delete(blobDataPath(img.digest));
  const before = await fsckJson(config, '--full');
  // With its manifest gone, what the image names is unknown: only the layer link to the lost blob shows.
  assert.deepEqual(kinds(before.report), [`link-dangling ${l0}`, `manifest-missing ${img.digest}`].sort());

  const repaired = await fsckJson(config, '--full', '--repair');
  assert.equal(repaired.code, 0, JSON.stringify(repaired.report, null, 1));
  assert.deepEqual(repaired.report.problems, []);
  assert.deepEqual(
    repaired.report.repairs!.map((r) => `${r.repaired} ${r.kind} ${r.digest}`).sort(),
    [`true blob-corrupt ${l1}`, `true blob-missing ${l0}`, `true manifest-missing ${img.digest}`].sort(),
  );

  // Served from storage alone: the upstream is gone.
  await up.close();
  upOpen = false;
  const out = join(work.dir, 'after');
  await skopeoCopy(`docker://${cache.host}/docker.io/library/app:1`, `oci:${out}:app`);
  assert.equal(await layoutDigest(out, 'app'), img.digest);
  for (const l of img.layers) assert.deepEqual(await layoutBlob(out, l.descriptor.digest), l.bytes);
});

test("sluice fsck --repair refuses a lying upstream's bytes and writes nothing", async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const work = await scratch('sluice-fsck-lie-');
  t.after(() => work.cleanup());
  const up = await startRegistry();
  t.after(() => up.close());
  const hostile = await startHostileUpstream(up.url);
  t.after(() => hostile.close());
  const img: TestImage = await makeImage({
    label: 'liar',
    layers: [{ a: Buffer.alloc(128 * 1024, 9) }, { b: 'other' }],
  });
  await pushImage(up.url, 'library/app', '1', img);
  const { cache, config } = await filledCache(t, hostile.url, work.dir);
  const [l0, l1] = img.layers.map((l) => l.descriptor.digest) as [Digest, Digest];
  await cache.ctx.driver.delete(blobDataPath(l0));
  const corrupted = await corrupt(cache, l1);
  // From now on every blob comes back with one byte changed, at the right length.
  hostile.lie(/^GET .*\/blobs\/sha256:/, { kind: 'corrupt' });
  const r = await fsckJson(config, '--full', '--repair');
  assert.equal(r.code, 1);
  assert.ok(
    hostile.seen.some((s) => s.includes(l0)),
    'the repair never asked the upstream',
  );
  assert.deepEqual(
    r.report.repairs!.map((x) => `${x.repaired} ${x.kind} ${x.digest}`).sort(),
    [`false blob-corrupt ${l1}`, `false blob-missing ${l0}`].sort(),
  );
  for (const x of r.report.repairs!) assert.match(x.detail, /refused, nothing written/);
  assert.deepEqual(kinds(r.report), [`blob-corrupt ${l1}`, `blob-missing ${l0}`].sort());
  assert.equal(await cache.ctx.driver.stat(blobDataPath(l0)), null);
  assert.deepEqual(await cache.ctx.driver.getContent(blobDataPath(l1)), corrupted);
  assert.deepEqual(
    await cache.files('docker/registry/v2/repositories/docker.io/library/app/_uploads'),
    [],
    'no session left behind',
  );
});

test('sluice fsck --repair stops reading an upstream that sends more than the manifest gives', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const work = await scratch('sluice-fsck-endless-');
  t.after(() => work.cleanup());
  const up = await startRegistry();
  t.after(() => up.close());
  const hostile = await startHostileUpstream(up.url);
  t.after(() => hostile.close());
  const img: TestImage = await makeImage({ label: 'endless', layers: [{ a: Buffer.alloc(128 * 1024, 7) }] });
  await pushImage(up.url, 'library/app', '1', img);
  const { cache, config } = await filledCache(t, hostile.url, work.dir);
  const l0 = img.layers[0]!.descriptor.digest as Digest;
  await cache.ctx.driver.delete(blobDataPath(l0));
  // 64 MiB without a Content-Length for a 128 KiB layer.
  hostile.lie(/^GET .*\/blobs\/sha256:/, { kind: 'endless', bytes: 64 * 1024 * 1024 });
  const r = await fsckJson(config, '--repair');
  assert.equal(r.code, 1);
  assert.deepEqual(
    r.report.repairs!.map((x) => `${x.repaired} ${x.kind} ${x.digest}`),
    [`false blob-missing ${l0}`],
  );
  assert.match(r.report.repairs![0]!.detail, /more than the \d+ bytes the manifest gives/);
  assert.equal(await cache.ctx.driver.stat(blobDataPath(l0)), null);
  assert.deepEqual(
    await cache.files('docker/registry/v2/repositories/docker.io/library/app/_uploads'),
    [],
    'no session left behind',
  );
});
