import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { runPassthrough, type Daemon, type PassthroughResult } from '../../src/passthrough/run.js';
import { DockerEngine } from '../../src/transport/docker-engine.js';
import { Upstreams } from '../../src/upstream/upstreams.js';
import type { AuthFixture } from '../auth/fixture.js';
import type { TestDaemon } from '../helpers/dockerd.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { makeImage } from '../helpers/images.js';
import { sluice } from '../helpers/sluice-cli.js';
import {
  alice,
  clearImages,
  loadLocal,
  pull,
  pushAs,
  sharedWorld,
  startDockerdWith,
  startHubStandIn,
  tagsOf,
} from './fixture.js';

// Passthrough judges an image ID and must load exactly that image: a tag the host moves meanwhile, or an
// archive that brings more than was asked for, must never leave an unapproved image in the inner daemon.
interface World {
  hub: AuthFixture;
  /** In front of the hub for the public check only (the host pulls from the hub directly). */
  proxy: FaultProxy;
  host: TestDaemon;
  inner: TestDaemon;
  publicId: string;
  secretId: string;
}

async function setUp(): Promise<World> {
  const hub = await startHubStandIn(['konard/secret']);
  const proxy = await startFaultProxy(hub.reg.url);
  const hubAuth = alice('docker.io');
  await pushAs(hub.reg.url, 'konard/hive-mind', 'latest', await makeImage({ format: 'docker', label: 'hive-mind' }));
  await pushAs(
    hub.reg.url,
    'konard/secret',
    '1',
    await makeImage({ format: 'docker', label: 'secret' }),
    hubAuth.header,
  );
  const host = await startDockerdWith(['--registry-mirror', hub.reg.url]);
  const inner = await startDockerdWith([]);
  await pull(host, 'konard/hive-mind:latest');
  await pull(host, 'konard/secret:1', hubAuth.auth);
  const tags = await tagsOf(host);
  return { hub, proxy, host, inner, publicId: tags['konard/hive-mind:latest']!, secretId: tags['konard/secret:1']! };
}

const ready = sharedWorld(setUp, async (w) => {
  await Promise.all([w.host.stop(), w.inner.stop()]);
  await w.proxy.close();
  await w.hub.close();
});

/** Every image ID the inner daemon holds, tagged or not. */
async function innerIds(w: World): Promise<string[]> {
  return (await new DockerEngine(w.inner.host).listImages()).map((i) => i.id);
}

test('a tag moved on the host while its image is judged public: the judged image is loaded under it, never the new one', {
  timeout: 180_000,
}, async (t) => {
  const w = ready(t);
  if (!w) return;
  await clearImages(w.inner);
  let moved = 0;
  // The host's tag moves to the private image while the registry answers for the public one.
  w.proxy.beforeForward = async (req) => {
    if (req.method !== 'HEAD' || !/^\/v2\/konard\/hive-mind\/manifests\/sha256:/.test(req.url ?? '')) return;
    moved++;
    await w.host.docker(['tag', 'konard/secret:1', 'konard/hive-mind:latest']);
  };
  t.after(async () => {
    w.proxy.beforeForward = undefined;
    await w.host.docker(['tag', w.publicId, 'konard/hive-mind:latest']);
  });
  const r = await sluice(
    [
      'passthrough',
      '--json',
      '--from',
      w.host.host,
      '--to',
      w.inner.host,
      '--upstream',
      `docker.io=${w.proxy.url}`,
      '--images',
      'konard/hive-mind',
    ],
    { DOCKER_HOST: '' },
  );
  assert.deepEqual(w.proxy.hookErrors, []);
  assert.ok(moved > 0, 'the public check went through the proxy');
  assert.equal(
    (await tagsOf(w.host))['konard/hive-mind:latest'],
    w.secretId,
    'the tag did move on the host before the save',
  );
  const out = JSON.parse(r.stdout) as PassthroughResult;
  assert.deepEqual(
    out.entries.filter((e) => e.decision === 'copy').map((e) => [e.reference, e.image, e.result]),
    [['konard/hive-mind:latest', w.publicId, 'copied']],
  );
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await tagsOf(w.inner), { 'konard/hive-mind:latest': w.publicId });
  assert.ok(!(await innerIds(w)).includes(w.secretId), 'the private image is not in the inner daemon at all');
});

test('an archive that brings an unapproved image: it is removed, and the inner tag it took points back where it did', {
  timeout: 180_000,
}, async (t) => {
  const w = ready(t);
  if (!w) return;
  await clearImages(w.inner);
  // The inner daemon already has its own konard/secret:1, which the host's archive would take over.
  await loadLocal(w.inner, await makeImage({ format: 'docker', label: 'inner own' }), 'konard/secret:1');
  const own = (await tagsOf(w.inner))['konard/secret:1']!;
  const hostEngine = new DockerEngine(w.host.host);
  // A host that answers an export with one more image than asked for, under its own tag.
  const from: Daemon = {
    host: hostEngine.host,
    listImages: () => hostEngine.listImages(),
    exportImages: (names) => hostEngine.exportImages([...names, 'konard/secret:1']),
    loadImages: (s) => hostEngine.loadImages(s),
    tagImage: (id, name) => hostEngine.tagImage(id, name),
    removeImage: (name, o) => hostEngine.removeImage(name, o),
    close: () => hostEngine.close(),
  };
  const upstreams = new Upstreams({});
  t.after(() => upstreams.close());
  const r = await runPassthrough({
    mode: 'all',
    registries: [],
    images: ['konard/hive-mind'],
    from,
    to: new DockerEngine(w.inner.host),
    upstreams,
  });
  assert.deepEqual(
    r.entries.filter((e) => e.decision === 'copy').map((e) => [e.reference, e.result]),
    [['konard/hive-mind:latest', 'copied']],
  );
  assert.deepEqual(await tagsOf(w.inner), { 'konard/hive-mind:latest': w.publicId, 'konard/secret:1': own });
  assert.ok(!(await innerIds(w)).includes(w.secretId), 'the unapproved image is removed');
  assert.deepEqual([...r.removed].sort(), [`konard/secret:1 (pointed back at ${own})`, w.secretId].sort());
  assert.ok(
    r.warnings.some((x) => x.startsWith('the load brought images or tags that were not approved; taken back from ')),
    r.warnings.join('\n'),
  );
});

test('sluice passthrough ends on time when the registry of the public check drips its token answer forever', {
  timeout: 120_000,
}, async (t) => {
  const w = ready(t);
  if (!w) return;
  await clearImages(w.inner);
  const drips = new Set<NodeJS.Timeout>();
  // Answers at once and then never finishes: no connect or header timeout fires, only the deadline ends the question.
  const server = createServer((req, res) => {
    if (req.url === '/v2/')
      return void res
        .writeHead(401, { 'www-authenticate': `Bearer realm="http://${req.headers.host}/token",service="drip"` })
        .end();
    res.writeHead(200, { 'content-type': 'application/json' }).write('{"token": "');
    const drip = setInterval(() => res.write('x'), 100);
    drips.add(drip);
    res.on('close', () => clearInterval(drip));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const d of drips) clearInterval(d);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const drip = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const args = [
    '--from',
    w.host.host,
    '--to',
    w.inner.host,
    '--upstream',
    `docker.io=${drip}`,
    '--registry-deadline',
    '2s',
    '--images',
    'konard/hive-mind',
    '--dry-run',
  ];
  // The child must exit by itself while the registry is still dripping (the server closes only after the test).
  const r = await sluice(['passthrough', '--json', ...args], { DOCKER_HOST: '' });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as PassthroughResult;
  assert.deepEqual(
    out.entries
      .filter((e) => e.decision !== 'skip: no pattern matches')
      .map((e) => [e.reference, e.decision, e.reason]),
    [
      [
        'konard/hive-mind:latest',
        'skip: not public',
        'registry docker.io did not answer within 2 s, so docker.io/konard/hive-mind is not proven public',
      ],
    ],
  );
});
