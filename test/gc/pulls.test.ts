import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { nodePullsPath, pullNodesPath, readPulls, type PullTimes } from '../../src/gc/pulls.js';
import { nodeNameFrom } from '../../src/gc/pulls-config.js';
import { validateConfig } from '../../src/config/load.js';
import type { RepositoryName } from '../../src/oci/name.js';
import type { StorageDriver } from '../../src/storage/driver.js';
import { S3Driver, type S3Options } from '../../src/storage/s3.js';
import { buildMirrorJobs } from '../../src/registry/sync-setup.js';
import { scratch, skopeo } from '../helpers/clients.js';
import { makeImage, makeMultiArch, pushImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startS3 } from '../helpers/s3.js';
import { startS3Node } from '../helpers/s3-nodes.js';
import { needTools } from '../helpers/tools.js';

const R = (name: string): RepositoryName => name as RepositoryName;
const quiet = { info: () => undefined, warn: () => undefined };
const fast = (node = 'test-node') => ({ storage: { gc: { pulls: { flush: '100ms', node } } } });

/** Waits (up to 15 s) until the repository's merged pull times satisfy `ok`; returns the last read. */
async function pullsUntil(driver: StorageDriver, repo: string, ok: (p: PullTimes) => boolean): Promise<PullTimes> {
  let p = await readPulls(driver, repo as RepositoryName);
  for (
    const until = Date.now() + 15_000;
    !ok(p) && Date.now() < until;
    p = await readPulls(driver, repo as RepositoryName)
  )
    await sleep(100);
  return p;
}

function manifestHead(reg: TestRegistry, repo: string, ref: string, method = 'GET'): Promise<Response> {
  const accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';
  return fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, {
    method,
    headers: { accept },
    signal: AbortSignal.timeout(3000),
  });
}

test('skopeo inspect by tag records the tag and its digest; skopeo copy by digest records the digest', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const reg = await startRegistry(fast());
  t.after(() => reg.close());
  const img = await makeImage({ label: 'pulled' });
  const other = await makeImage({ label: 'by-digest' });
  await pushImage(reg.url, 'team/app', 'v1', img);
  await pushImage(reg.url, 'team/app', 'v2', other);
  await reg.ctx.pulls!.flush();
  assert.deepEqual(
    await readPulls(reg.ctx.driver, R('team/app')),
    { tags: new Map(), manifests: new Map() },
    'a push is not a pull',
  );
  const before = Date.now();
  await skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/team/app:v1`]);
  const work = await scratch('sluice-pulls-');
  t.after(() => work.cleanup());
  await skopeo([
    'copy',
    '--src-tls-verify=false',
    `docker://${reg.host}/team/app@${other.digest}`,
    `oci:${join(work.dir, 'o')}:x`,
  ]);
  const p = await pullsUntil(reg.ctx.driver, 'team/app', (x) => x.manifests.has(other.digest));
  assert.deepEqual([...p.tags.keys()], ['v1']);
  assert.deepEqual([...p.manifests.keys()].sort(), [img.digest, other.digest].sort());
  for (const at of [p.tags.get('v1')!, ...p.manifests.values()])
    assert.ok(at >= before && at <= Date.now(), String(at));
  assert.deepEqual(await reg.files(pullNodesPath(R('team/app'))), ['test-node.json']);
});

test('a HEAD by tag counts as a pull (containerd resolves so); a HEAD by digest does not', async (t) => {
  const reg = await startRegistry(fast());
  t.after(() => reg.close());
  const img = await makeImage({ label: 'head' });
  await pushImage(reg.url, 'app', 'v1', img);
  await pushImage(reg.url, 'app', 'v2', img);
  assert.equal((await manifestHead(reg, 'app', 'v1', 'HEAD')).status, 200);
  assert.equal((await manifestHead(reg, 'other', img.digest, 'HEAD')).status, 404);
  await pushImage(reg.url, 'bydigest', 'v1', img);
  assert.equal((await manifestHead(reg, 'bydigest', img.digest, 'HEAD')).status, 200);
  const p = await pullsUntil(reg.ctx.driver, 'app', (x) => x.tags.has('v1'));
  assert.deepEqual([...p.tags.keys()], ['v1']);
  assert.deepEqual([...p.manifests.keys()], [img.digest]);
  await reg.ctx.pulls!.flush();
  assert.equal((await readPulls(reg.ctx.driver, R('bydigest'))).manifests.size, 0);
});

test('a pull answers at once while the flush is stuck on a storage that does not answer', async (t) => {
  const reg = await startRegistry(fast());
  const img = await makeImage({ label: 'stall' });
  await pushImage(reg.url, 'app', 'v1', img);
  await pushImage(reg.url, 'app', 'v2', img);
  // The driver itself, with its writes of pull files held until the test lets them go.
  const driver = reg.ctx.driver;
  const put = driver.putContent.bind(driver);
  let stalled = 0;
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  driver.putContent = async (path, data, options) => {
    if (path.includes('/_sluice/pulls/')) {
      stalled++;
      await released;
    }
    return put(path, data, options);
  };
  t.after(async () => {
    release();
    await reg.close();
  });
  assert.equal((await manifestHead(reg, 'app', 'v1')).status, 200);
  for (const until = Date.now() + 10_000; stalled === 0 && Date.now() < until; ) await sleep(20);
  assert.equal(stalled, 1, 'the flush never reached the storage');
  // Many flush periods later the write still hangs, and every pull is answered within moments.
  for (let i = 0; i < 10; i++) {
    const started = Date.now();
    const r = await manifestHead(reg, 'app', 'v2');
    assert.equal(r.status, 200);
    await r.arrayBuffer();
    assert.ok(Date.now() - started < 1000, `a pull took ${Date.now() - started} ms`);
    await sleep(50);
  }
  assert.equal(stalled, 1, 'one flush at a time');
  release();
  // What was pulled during the stall is written by a later flush.
  const p = await pullsUntil(driver, 'app', (x) => x.tags.has('v2'));
  assert.deepEqual([...p.tags.keys()].sort(), ['v1', 'v2']);
});

test('mirror jobs and cache fills store images without counting as pulls; the client pull through the cache counts', async (t) => {
  const up = await startRegistry();
  t.after(() => up.close());
  const app = await makeImage({ label: 'mirrored' });
  const multi = await makeMultiArch('cached');
  await pushImage(up.url, 'library/app', '1', app);
  await pushImage(up.url, 'library/multi', '1', multi);
  const reg = await startRegistry({
    ...fast(),
    upstreams: { 'docker.io': { url: up.url } },
    flows: [{ images: ['docker.io/**'] }],
    mirrors: [{ name: 'm', images: ['docker.io/library/app'], every: '24h' }],
  });
  t.after(() => reg.close());
  await buildMirrorJobs(reg.ctx, reg.ctx.config, quiet)[0]!.run();
  assert.equal(
    await reg.ctx.repo(R('docker.io/library/app')).resolveTag('1'),
    app.digest,
    'the mirror job stored the image',
  );
  // The cache fetches the index from upstream and stores it (a fill); the client's HEAD by tag is the pull.
  assert.equal((await manifestHead(reg, 'docker.io/library/multi', '1', 'HEAD')).status, 200);
  assert.ok(await reg.ctx.repo(R('docker.io/library/multi')).hasManifest(multi.digest), 'the cache stored the index');
  let p = await pullsUntil(reg.ctx.driver, 'docker.io/library/multi', (x) => x.tags.has('1'));
  assert.deepEqual([...p.manifests.keys()], [multi.digest]);
  // A child the client GETs by digest is filled and pulled: recorded once it is the client's pull.
  const child = multi.images[0]!;
  assert.equal((await manifestHead(reg, 'docker.io/library/multi', child.digest)).status, 200);
  p = await pullsUntil(reg.ctx.driver, 'docker.io/library/multi', (x) => x.manifests.has(child.digest));
  assert.deepEqual([...p.manifests.keys()].sort(), [multi.digest, child.digest].sort());
  await reg.ctx.pulls!.flush();
  const mirrored = await readPulls(reg.ctx.driver, R('docker.io/library/app'));
  assert.equal(mirrored.tags.size + mirrored.manifests.size, 0);
});

test('readPulls merges every node file of a repository and ignores hostile ones', async (t) => {
  const reg = await startRegistry({ storage: { gc: { pulls: { enabled: false } } } });
  t.after(() => reg.close());
  const d = reg.ctx.driver;
  const repo = 'team/app' as RepositoryName;
  const dir = pullNodesPath(repo);
  const digest = `sha256:${'a'.repeat(64)}`;
  const put = (name: string, body: string | Buffer) =>
    d.putContent(`${dir}/${name}`, Buffer.isBuffer(body) ? body : Buffer.from(body));
  await put('a.json', JSON.stringify({ tags: { v1: 1000, v2: 5000 }, manifests: { [digest]: 1000 } }));
  await put('b.json', JSON.stringify({ tags: { v1: 3000 }, manifests: { [digest]: 4000 } }));
  // Bad entries beside a good one: a bad tag, a bad digest, a time that is not a finite positive number.
  await put(
    'c.json',
    `{"tags":{"../x":9000,"ok":2000,"neg":-5,"big":1e400,"str":"7"},"manifests":{"sha256:zz":9000,"__proto__":9000}}`,
  );
  await put('broken.json', '{"tags":{"v1":99999');
  await put('array.json', '[1,2,3]');
  // Over 1 MiB: ignored whole, even with a valid shape.
  await put(
    'huge.json',
    Buffer.from(JSON.stringify({ tags: { v1: 99999, pad: 1 }, manifests: {}, pad: 'x'.repeat(1024 * 1024) })),
  );
  // Names outside the node grammar are not read at all.
  for (const name of ['UPPER.json', '-dash.json', '..json', 'a.b.json', 'noext', `${'n'.repeat(65)}.json`]) {
    await put(name, JSON.stringify({ tags: { v1: 99999 }, manifests: {} }));
  }
  const p = await readPulls(d, repo);
  assert.deepEqual(Object.fromEntries(p.tags), { v1: 3000, v2: 5000, ok: 2000 });
  assert.deepEqual(Object.fromEntries(p.manifests), { [digest]: 4000 });
  assert.throws(() => nodePullsPath(repo, '../a'), /invalid node name/);
  assert.throws(() => pullNodesPath(R('../x') as RepositoryName), /invalid repository name/);
  assert.deepEqual(await readPulls(d, 'never/pulled' as RepositoryName), { tags: new Map(), manifests: new Map() });
  assert.equal(nodeNameFrom('Build_Host.Example.com'), 'build-host-example-com');
  assert.equal(nodeNameFrom('--'), 'node');
  // A node name from the config becomes part of a path: the start is refused for anything else.
  for (const node of ['../x', 'Upper', 'a/b', '-x', 'n'.repeat(65)]) {
    assert.throws(
      () => validateConfig({ storage: { filesystem: { rootdirectory: '/srv/r' }, gc: { pulls: { node } } } }),
      /storage\.gc\.pulls\.node/,
      node,
    );
  }
});

test('a read-only registry records pull times too; with write: false it keeps them in memory only', async (t) => {
  const writer = await startRegistry({ storage: { gc: { pulls: { enabled: false } } } });
  t.after(() => writer.close());
  const img = await makeImage({ label: 'ro' });
  await pushImage(writer.url, 'app', 'v1', img);
  for (const [node, write] of [
    ['ro-writes', true],
    ['ro-memory', false],
  ] as const) {
    const reader = await startRegistry(
      { storage: { maintenance: { readonly: { enabled: true } }, gc: { pulls: { flush: '1h', node, write } } } },
      writer.root,
    );
    assert.equal((await manifestHead(reader, 'app', 'v1')).status, 200);
    assert.deepEqual([...reader.ctx.pulls!.unwritten(R('app')).tags.keys()], ['v1']);
    // The last batch is written on close.
    await reader.close();
  }
  assert.deepEqual(await writer.files(pullNodesPath(R('app'))), ['ro-writes.json']);
});

test('two nodes on one bucket each write their own pull file; readPulls merges them', async (t) => {
  const s3 = await startS3('pulls');
  const work = await scratch('sluice-pulls-nodes-');
  t.after(async () => {
    await s3.close();
    await work.cleanup();
  });
  const root = `nodes-${randomUUID()}`;
  const node = (name: string) =>
    startS3Node(s3, work.dir, {
      key: name.toUpperCase().replace('-', ''),
      root,
      storage: { gc: { pulls: { flush: '1h', node: name } } },
    });
  const a = await node('node-a');
  const b = await node('node-b');
  const img = await makeImage({ label: 'two-nodes' });
  const newer = await makeImage({ label: 'two-nodes-2' });
  try {
    await pushImage(a.url, 'team/app', 'v1', img);
    await pushImage(a.url, 'team/app', 'v2', newer);
    const get = (url: string, ref: string) =>
      fetch(`${url}/v2/team/app/manifests/${ref}`, { headers: { accept: img.mediaType } }).then((r) => r.arrayBuffer());
    await get(a.url, 'v1');
    await get(a.url, 'v2');
    await sleep(20);
    await get(b.url, 'v1');
  } finally {
    // SIGTERM: each writes its batch on the way down.
    await a.stop();
    await b.stop();
  }
  const driver = new S3Driver(s3.config(root) as unknown as S3Options);
  t.after(() => driver.destroy());
  assert.deepEqual((await driver.list(pullNodesPath(R('team/app')))).sort(), ['node-a.json', 'node-b.json']);
  const mine = await readPulls(driver, R('team/app'));
  const fromA = JSON.parse((await driver.getContent(nodePullsPath(R('team/app'), 'node-a')))!.toString()) as {
    tags: Record<string, number>;
  };
  const fromB = JSON.parse((await driver.getContent(nodePullsPath(R('team/app'), 'node-b')))!.toString()) as {
    tags: Record<string, number>;
  };
  assert.deepEqual(Object.keys(fromA.tags).sort(), ['v1', 'v2']);
  assert.deepEqual(Object.keys(fromB.tags), ['v1']);
  assert.ok(fromB.tags['v1']! > fromA.tags['v1']!, 'node b pulled v1 later');
  assert.deepEqual(Object.fromEntries(mine.tags), { v1: fromB.tags['v1'], v2: fromA.tags['v2'] });
  assert.deepEqual([...mine.manifests.keys()].sort(), [img.digest, newer.digest].sort());
});

test('a node whose storage refuses the write keeps pull times in memory and stops trying', async (t) => {
  const reg = await startRegistry(fast('refused'));
  const img = await makeImage({ label: 'refused' });
  await pushImage(reg.url, 'app', 'v1', img);
  await pushImage(reg.url, 'app', 'v2', img);
  const driver = reg.ctx.driver;
  const put = driver.putContent.bind(driver);
  let refused = 0;
  // As a read-only mount or keys that can only read answer.
  driver.putContent = async (path, data, options) => {
    if (!path.includes('/_sluice/pulls/')) return put(path, data, options);
    refused++;
    throw Object.assign(new Error(`EACCES: permission denied, open '${path}'`), { code: 'EACCES' });
  };
  t.after(() => reg.close());
  assert.equal((await manifestHead(reg, 'app', 'v1')).status, 200);
  for (const until = Date.now() + 10_000; refused === 0 && Date.now() < until; ) await sleep(20);
  assert.equal(refused, 1);
  assert.equal((await manifestHead(reg, 'app', 'v2')).status, 200);
  // Many flush periods, and the close: not one more attempt.
  await sleep(600);
  await reg.ctx.pulls!.close();
  assert.equal(refused, 1);
  assert.deepEqual([...reg.ctx.pulls!.unwritten(R('app')).tags.keys()].sort(), ['v1', 'v2']);
});
