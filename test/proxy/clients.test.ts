import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startContainerd } from '../auth/containerd.js';
import { startAuthRegistry, USERS } from '../auth/fixture.js';
import { inspectRaw, layoutBlob, layoutDigest, scratch, skopeo, skopeoCopy, skopeoMay } from '../helpers/clients.js';
import { hasDocker } from '../helpers/dockerd.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { makeImage, makeIndex, makeMultiArch, pushImage, writeOciLayout, type TestIndex } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';
import { needTools, run, runOk } from '../helpers/tools.js';
import {
  ctrImageDigest,
  startCache,
  startDistributionHtpasswd,
  startDockerdWithConfig,
  type TestCache,
} from './helpers.js';

// Docker Hub is unreachable here: an upstream registry on 127.0.0.1 stands in for it, and the cache's
// `docker.io` upstream points there. Every client below names images as docker.io/..., as users do.
const OFFICIAL = [{ images: ['docker.io/library/*'] }];
const PULL_MS = 120_000;

test('dockerd registry-mirrors: docker pull busybox:1 comes through the cache with upstream digests; refused images fail', async (t) => {
  if (!needTools(t, 'dockerd')) return;
  if (!hasDocker()) return t.skip('docker CLI not installed');
  const up = await startRegistry();
  const cache = await startCache(up.url, OFFICIAL);
  const daemon = await startDockerdWithConfig({ 'registry-mirrors': [cache.url] });
  try {
    // Docker Hub's images are mostly Docker manifest lists of Docker v2s2 images: this one is too.
    const platforms = [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ];
    const idx = makeIndex(
      await Promise.all(
        platforms.map((platform) => makeImage({ platform, format: 'docker', label: 'dockerd-mirror' })),
      ),
      'docker',
    );
    await pushImage(up.url, 'library/busybox', '1', idx);
    await pushImage(up.url, 'someone/else', '1', idx);

    const pull = await daemon.docker(['pull', 'busybox:1'], PULL_MS);
    assert.equal(pull.code, 0, `${pull.stdout}\n${pull.stderr}`);
    const inspect = await daemon.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', 'busybox:1']);
    assert.equal(inspect.code, 0, inspect.stderr);
    // The name stays docker.io's; the digest is the upstream index's, byte for byte through the mirror.
    assert.deepEqual(JSON.parse(inspect.stdout), [`busybox@${idx.digest}`]);
    const fetched = (await cache.audit()).filter((r) => r.action === 'fetch' && r.decision === 'allowed');
    assert.ok(
      fetched.some((r) => r.repository === 'docker.io/library/busybox' && r.reference === `1@${idx.digest}`),
      JSON.stringify(fetched),
    );

    // Not approved: the mirror refuses, dockerd falls back to the real Docker Hub, which is unreachable here.
    const denied = await daemon.docker(['pull', 'someone/else:1'], PULL_MS);
    assert.notEqual(denied.code, 0);
    t.diagnostic(`docker pull someone/else:1 printed: ${JSON.stringify(denied.stderr.trim())}`);
    const refusals = (await cache.audit()).filter((r) => r.action === 'fetch' && r.decision === 'denied');
    assert.ok(
      refusals.some(
        (r) =>
          r.repository === 'docker.io/someone/else' &&
          r.reference === '1' &&
          /is not an approved upstream image: no flow rule matches/.test(String(r.reason)),
      ),
      JSON.stringify(refusals),
    );
    assert.ok((await cache.metric('sluice_cache_denials_total{rule="none"}')) >= 1);
    const images = await daemon.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    assert.ok(!images.stdout.includes('someone/else'), images.stdout);
    // What the user sees is only the fallback's DNS error; the cache's reason is in dockerd's log.
    assert.match(
      await daemon.log(),
      /Attempting next endpoint for pull after error: denied: docker\.io\/someone\/else:1 is not an approved upstream image/,
    );

    // The host-prefixed form talks to the cache directly: the DENIED reason reaches the user.
    const prefixed = await daemon.docker(['pull', `${cache.host}/docker.io/library/busybox:1`], PULL_MS);
    assert.equal(prefixed.code, 0, prefixed.stderr);
    const pd = await daemon.docker([
      'image',
      'inspect',
      '--format',
      '{{json .RepoDigests}}',
      `${cache.host}/docker.io/library/busybox:1`,
    ]);
    // One image in dockerd under both names: the same bytes by either way in.
    assert.ok(
      (JSON.parse(pd.stdout) as string[]).includes(`${cache.host}/docker.io/library/busybox@${idx.digest}`),
      pd.stdout,
    );
    const other = await daemon.docker(['pull', `${cache.host}/docker.io/other/x:1`], PULL_MS);
    assert.notEqual(other.code, 0);
    t.diagnostic(`docker pull ${cache.host}/docker.io/other/x:1 printed: ${JSON.stringify(other.stderr.trim())}`);
    assert.match(other.stderr, /docker\.io\/other\/x:1 is not an approved upstream image/);
  } finally {
    await daemon.stop();
    await cache.close();
    await up.close();
  }
});

/** A hosts.toml that sends pulls of the folder's registry to the cache first, as containerd documents mirrors. */
function hostsToml(cacheUrl: string, server?: string): string {
  return `${server ? `server = "${server}"\n\n` : ''}[host."${cacheUrl}"]\n  capabilities = ["pull", "resolve"]\n`;
}

test('containerd hosts.toml: ctr pulls docker.io images through the cache (?ns=docker.io), by docker.io/ and _default folders', async (t) => {
  if (!needTools(t, 'containerd', 'ctr')) return;
  const up = await startRegistry();
  const cache = await startCache(up.url, OFFICIAL);
  // A recorder in front of the cache, to see the paths containerd really sends.
  const seen = await startFaultProxy(cache.url);
  const s = await scratch();
  const c = await startContainerd();
  try {
    const idx = await makeMultiArch('containerd-mirror');
    const alpine = await makeImage({ label: 'containerd-default' });
    await pushImage(up.url, 'library/busybox', '1', idx);
    await pushImage(up.url, 'library/alpine', '3', alpine);
    await pushImage(up.url, 'other/x', '1', alpine);

    const certs = join(s.dir, 'certs.d');
    await mkdir(join(certs, 'docker.io'), { recursive: true });
    await writeFile(join(certs, 'docker.io', 'hosts.toml'), hostsToml(seen.url, 'https://registry-1.docker.io'));
    const pull = await c.ctr(['images', 'pull', '--hosts-dir', certs, 'docker.io/library/busybox:1']);
    assert.equal(pull.code, 0, `${pull.stdout}\n${pull.stderr}`);
    assert.equal(ctrImageDigest((await c.ctr(['images', 'ls'])).stdout, 'docker.io/library/busybox:1'), idx.digest);
    assert.ok(seen.seen.includes('HEAD /v2/library/busybox/manifests/1?ns=docker.io'), JSON.stringify(seen.seen));
    assert.ok(
      seen.seen.some((l) => l.startsWith('GET /v2/library/busybox/blobs/') && l.endsWith('?ns=docker.io')),
      JSON.stringify(seen.seen),
    );

    // Not approved: the cache refuses, ctr moves on to the server (Docker Hub), unreachable here.
    const denied = await c.ctr(['images', 'pull', '--hosts-dir', certs, 'docker.io/other/x:1']);
    assert.notEqual(denied.code, 0);
    t.diagnostic(`ctr pull docker.io/other/x:1 printed: ${JSON.stringify(denied.stderr.trim().split('\n').slice(-3))}`);
    const refusals = (await cache.audit()).filter((r) => r.action === 'fetch' && r.decision === 'denied');
    assert.ok(
      refusals.some(
        (r) => r.repository === 'docker.io/other/x' && /is not an approved upstream image/.test(String(r.reason)),
      ),
      JSON.stringify(refusals),
    );

    // A _default folder covers every registry; for docker.io images containerd still says ns=docker.io.
    const defaults = join(s.dir, 'defaults.d');
    await mkdir(join(defaults, '_default'), { recursive: true });
    await writeFile(join(defaults, '_default', 'hosts.toml'), hostsToml(seen.url));
    const pull2 = await c.ctr(['images', 'pull', '--hosts-dir', defaults, 'docker.io/library/alpine:3']);
    assert.equal(pull2.code, 0, `${pull2.stdout}\n${pull2.stderr}`);
    assert.equal(ctrImageDigest((await c.ctr(['images', 'ls'])).stdout, 'docker.io/library/alpine:3'), alpine.digest);
    assert.ok(seen.seen.includes('HEAD /v2/library/alpine/manifests/3?ns=docker.io'), JSON.stringify(seen.seen));
    // Each tag came in once; containerd then asked for its platform's child by digest, also once.
    const fetched = (await cache.audit())
      .filter((r) => r.action === 'fetch' && r.decision === 'allowed')
      .map((r) => `${r.repository} ${r.reference}`);
    assert.deepEqual(fetched.sort(), [
      `docker.io/library/alpine 3@${alpine.digest}`,
      `docker.io/library/busybox 1@${idx.digest}`,
      `docker.io/library/busybox ${idx.images[0]!.digest}`,
    ]);
  } finally {
    await c.stop();
    await s.cleanup();
    await seen.close();
    await cache.close();
    await up.close();
  }
});

test("containerd _default hosts.toml: an image of a registry the cache does not proxy is not answered with docker.io's image", async (t) => {
  if (!needTools(t, 'containerd', 'ctr')) return;
  const up = await startRegistry();
  const cache = await startCache(up.url, OFFICIAL);
  const seen = await startFaultProxy(cache.url);
  const s = await scratch();
  const c = await startContainerd();
  try {
    // docker.io/library/busybox:1 exists upstream and is approved; ghcr.io/library/busybox:1 is another image.
    await pushImage(up.url, 'library/busybox', '1', await makeImage({ label: 'docker-hub-busybox' }));
    const defaults = join(s.dir, 'defaults.d');
    await mkdir(join(defaults, '_default'), { recursive: true });
    await writeFile(join(defaults, '_default', 'hosts.toml'), hostsToml(seen.url));
    const pull = await c.ctr(['images', 'pull', '--hosts-dir', defaults, 'ghcr.io/library/busybox:1']);
    t.diagnostic(
      `requests: ${JSON.stringify(seen.seen)}; ctr exit ${pull.code}: ${JSON.stringify(pull.stderr.trim().split('\n').slice(-1))}`,
    );
    assert.ok(seen.seen.includes('HEAD /v2/library/busybox/manifests/1?ns=ghcr.io'), JSON.stringify(seen.seen));
    // The cache has no ghcr.io upstream: it must not answer, so containerd goes on to ghcr.io (unreachable here).
    assert.equal(
      ctrImageDigest((await c.ctr(['images', 'ls'])).stdout, 'ghcr.io/library/busybox:1'),
      undefined,
      'ghcr.io/library/busybox:1 was pulled from the docker.io cache',
    );
    assert.notEqual(pull.code, 0);
    assert.deepEqual(
      (await cache.audit()).filter((r) => r.action === 'fetch'),
      [],
    );
  } finally {
    await c.stop();
    await s.cleanup();
    await seen.close();
    await cache.close();
    await up.close();
  }
});

test("docker.io/library/busybox:1 is one image for every client: a push to library/busybox on the cache does not replace it for dockerd's mirror", async (t) => {
  if (!needTools(t, 'dockerd', 'skopeo', 'containerd', 'ctr')) return;
  if (!hasDocker()) return t.skip('docker CLI not installed');
  const up = await startRegistry();
  const cache = await startCache(up.url, OFFICIAL);
  const s = await scratch();
  const daemon = await startDockerdWithConfig({ 'registry-mirrors': [cache.url] });
  const c = await startContainerd();
  try {
    const hub = await makeImage({ label: 'docker-hub-busybox', format: 'docker' });
    await pushImage(up.url, 'library/busybox', '1', hub);
    // Someone pushes their own library/busybox:1 to the cache (an open registry takes anonymous pushes).
    const other = await makeImage({ label: 'pushed-to-the-cache' });
    const layout = join(s.dir, 'other');
    await writeOciLayout(layout, [{ tag: 't', image: other }]);
    const pushed = await skopeoMay([
      'copy',
      '--dest-tls-verify=false',
      `oci:${layout}:t`,
      `docker://${cache.host}/library/busybox:1`,
    ]);
    // Refusing such a push is one fair answer; any other failure would make this test prove nothing.
    if (pushed.code !== 0) assert.match(pushed.stderr, /denied/i, pushed.stderr);

    const certs = join(s.dir, 'certs.d');
    await mkdir(join(certs, 'docker.io'), { recursive: true });
    await writeFile(join(certs, 'docker.io', 'hosts.toml'), hostsToml(cache.url, 'https://registry-1.docker.io'));
    const ctrPull = await c.ctr(['images', 'pull', '--hosts-dir', certs, 'docker.io/library/busybox:1']);
    assert.equal(ctrPull.code, 0, ctrPull.stderr);
    assert.equal(
      ctrImageDigest((await c.ctr(['images', 'ls'])).stdout, 'docker.io/library/busybox:1'),
      hub.digest,
      'containerd (ns=docker.io)',
    );
    const pull = await daemon.docker(['pull', 'busybox:1'], PULL_MS);
    assert.equal(pull.code, 0, pull.stderr);
    const digests = JSON.parse(
      (await daemon.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', 'busybox:1'])).stdout,
    ) as string[];
    assert.deepEqual(
      digests,
      [`busybox@${hub.digest}`],
      `dockerd's mirror pull of docker.io/library/busybox:1 got ${digests.join(', ')}; containerd got ${hub.digest} (Docker Hub's), the pushed image is ${other.digest}`,
    );
  } finally {
    await c.stop();
    await daemon.stop();
    await s.cleanup();
    await cache.close();
    await up.close();
  }
});

test('podman registries.conf mirror: podman pull docker.io/library/busybox:1 comes through the cache; a refused prefixed pull shows the reason', async (t) => {
  if (!needTools(t, 'podman')) return;
  const up = await startRegistry();
  const cache = await startCache(up.url, OFFICIAL);
  const s = await scratch();
  try {
    const idx = await makeMultiArch('podman-mirror');
    await pushImage(up.url, 'library/busybox', '1', idx);
    await pushImage(up.url, 'other/x', '1', idx);
    const conf = join(s.dir, 'registries.conf');
    await writeFile(
      conf,
      `[[registry]]\nlocation = "docker.io"\n\n[[registry.mirror]]\nlocation = "${cache.host}"\ninsecure = true\n`,
    );
    const base = [
      '--storage-driver',
      'vfs',
      '--root',
      join(s.dir, 'root'),
      '--runroot',
      join(s.dir, 'rr'),
      '--events-backend',
      'file',
    ];
    const podman = (args: string[]) =>
      run('podman', [...base, ...args], { env: { CONTAINERS_REGISTRIES_CONF: conf }, timeoutMs: PULL_MS });
    const pull = await podman(['pull', 'docker.io/library/busybox:1']);
    assert.equal(pull.code, 0, `${pull.stdout}\n${pull.stderr}`);
    const inspect = await podman([
      'image',
      'inspect',
      '--format',
      '{{json .RepoDigests}}',
      'docker.io/library/busybox:1',
    ]);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.ok(
      (JSON.parse(inspect.stdout) as string[]).includes(`docker.io/library/busybox@${idx.digest}`),
      inspect.stdout,
    );
    const fetched = (await cache.audit()).filter((r) => r.action === 'fetch' && r.decision === 'allowed');
    assert.ok(
      fetched.some((r) => r.repository === 'docker.io/library/busybox' && r.reference === `1@${idx.digest}`),
      JSON.stringify(fetched),
    );

    const denied = await podman(['pull', '--tls-verify=false', `${cache.host}/docker.io/other/x:1`]);
    assert.notEqual(denied.code, 0);
    t.diagnostic(`podman pull ${cache.host}/docker.io/other/x:1 printed: ${JSON.stringify(denied.stderr.trim())}`);
    assert.match(denied.stderr, /docker\.io\/other\/x:1 is not an approved upstream image: no flow rule matches/);
    // Through the mirror the refusal is also what podman reports, after it tried docker.io itself.
    const viaMirror = await podman(['pull', 'docker.io/other/x:1']);
    assert.notEqual(viaMirror.code, 0);
    t.diagnostic(`podman pull docker.io/other/x:1 printed: ${JSON.stringify(viaMirror.stderr.trim())}`);
    const images = await podman(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    assert.ok(!images.stdout.includes('other/x'), images.stdout);
  } finally {
    await s.cleanup();
    await cache.close();
    await up.close();
  }
});

/** Asserts an OCI layout written by `skopeo copy --all` holds the index and every child with its blobs. */
async function assertLayoutHolds(dir: string, tag: string, idx: TestIndex): Promise<void> {
  assert.equal(await layoutDigest(dir, tag), idx.digest);
  assert.deepEqual(await layoutBlob(dir, idx.digest), idx.manifest);
  for (const child of idx.images) {
    assert.deepEqual(await layoutBlob(dir, child.digest), child.manifest);
    assert.deepEqual(await layoutBlob(dir, child.config.descriptor.digest), child.config.bytes);
    for (const l of child.layers) assert.deepEqual(await layoutBlob(dir, l.descriptor.digest), l.bytes);
  }
}

test('skopeo through the host prefix: inspect --raw gives the upstream bytes, copy --all brings the whole index', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const up = await startRegistry();
  const cache = await startCache(up.url, OFFICIAL);
  const s = await scratch();
  try {
    const single = await makeImage({ label: 'skopeo-single', format: 'docker' });
    const idx = await makeMultiArch('skopeo-all');
    await pushImage(up.url, 'library/busybox', '1', single);
    await pushImage(up.url, 'library/multi', '1', idx);
    assert.deepEqual(
      await inspectRaw(`docker://${cache.host}/docker.io/library/busybox:1`),
      await inspectRaw(`docker://${up.host}/library/busybox:1`),
    );
    assert.deepEqual(await inspectRaw(`docker://${cache.host}/docker.io/library/busybox:1`), single.manifest);
    const out = join(s.dir, 'all');
    await skopeoCopy(`docker://${cache.host}/docker.io/library/multi:1`, `oci:${out}:x`, ['--all']);
    await assertLayoutHolds(out, 'x', idx);
    // Each platform came in once, whole: the cache answers the same again without upstream.
    await up.close();
    const again = join(s.dir, 'again');
    await skopeoCopy(`docker://${cache.host}/docker.io/library/multi:1`, `oci:${again}:x`, ['--all']);
    await assertLayoutHolds(again, 'x', idx);
    const refused = await skopeoMay([
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${cache.host}/docker.io/other/x:1`,
    ]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /docker\.io\/other\/x:1 is not an approved upstream image/);
  } finally {
    await s.cleanup();
    await cache.close();
    await up.close().catch(() => undefined);
  }
});

/** Writes an OCI layout holding `image` as tag `t` and copies it to `dest` with skopeo and `creds`. */
async function seed(
  dir: string,
  image: Parameters<typeof writeOciLayout>[1][number]['image'],
  dest: string,
  creds: string,
): Promise<void> {
  const layout = join(dir, `seed-${image.digest.slice(7, 19)}`);
  await writeOciLayout(layout, [{ tag: 't', image }]);
  await skopeo([
    'copy',
    '--dest-tls-verify=false',
    '--dest-creds',
    creds,
    ...('images' in image ? ['--all'] : []),
    `oci:${layout}:t`,
    dest,
  ]);
}

/** Distribution 2.8 with htpasswd (Basic) auth holding `idx` as library/app:1, for one test. */
async function startBasicUpstream(
  dir: string,
  idx: TestIndex,
  password: string,
): Promise<Awaited<ReturnType<typeof startDistributionHtpasswd>>> {
  const htpasswd = join(dir, 'htpasswd');
  await writeFile(htpasswd, (await runOk('htpasswd', ['-Bbn', 'puller', password])).stdout);
  const dist = await startDistributionHtpasswd(join(dir, 'dist'), htpasswd);
  try {
    await seed(dir, idx, `docker://${dist.host}/library/app:1`, `puller:${password}`);
  } catch (e) {
    await dist.stop();
    throw e;
  }
  return dist;
}

/**
 * Asks a cache whose upstream refuses it for library/app:1, over HTTP and with skopeo: the answer must come
 * fast and say, where the user reads it, that upstream refused the cache's credentials.
 */
async function assertRefusalExplained(
  t: { diagnostic(m: string): void },
  cache: TestCache,
  what: string,
): Promise<void> {
  const started = Date.now();
  const r = await fetch(`${cache.url}/v2/docker.io/library/app/manifests/1`);
  const took = Date.now() - started;
  const body = await r.text();
  t.diagnostic(`${what}: HTTP ${r.status} ${body} in ${took} ms`);
  assert.ok(took < 10_000, `${what}: the refusal took ${took} ms`);
  assert.ok(r.status >= 400, body);
  assert.match(body, /upstream docker\.io/);
  const viaSkopeo = await skopeoMay([
    'inspect',
    '--raw',
    '--tls-verify=false',
    `docker://${cache.host}/docker.io/library/app:1`,
  ]);
  assert.notEqual(viaSkopeo.code, 0);
  t.diagnostic(`${what}: skopeo printed ${JSON.stringify(viaSkopeo.stderr.trim())}`);
  // Clients print an error body only for 4xx answers; a 5xx reaches the user as "502 Bad Gateway" alone.
  assert.match(
    viaSkopeo.stderr,
    /upstream docker\.io/,
    `${what}: the user is not told that upstream refused the cache`,
  );
  assert.match(
    viaSkopeo.stderr,
    /401|403|unauthori[sz]ed|credentials|password|denied/i,
    `${what}: the user is not told why`,
  );
}

test("Distribution 2.8 with htpasswd as the upstream: the cache pulls with username/password, passwordfile, a docker login authfile, or Distribution's proxy: block", async (t) => {
  if (!needTools(t, 'skopeo', 'docker-registry', 'htpasswd')) return;
  const s = await scratch();
  const password = 'dist-pw-81c0e2';
  const idx = await makeMultiArch('distribution-basic');
  const dist = await startBasicUpstream(s.dir, idx, password);
  const caches: TestCache[] = [];
  try {
    // Distribution asks for Basic credentials; anonymous reads are refused.
    const anon = await fetch(`${dist.url}/v2/library/app/manifests/1`);
    assert.equal(anon.status, 401);
    assert.match(anon.headers.get('www-authenticate') ?? '', /^Basic realm="basic-realm"/);
    assert.equal(
      (
        await skopeo([
          'inspect',
          '--raw',
          '--tls-verify=false',
          '--creds',
          `puller:${password}`,
          `docker://${dist.host}/library/app:1`,
        ])
      ).stdout,
      idx.manifest.toString('utf8'),
    );

    const passwordfile = join(s.dir, 'password');
    await writeFile(passwordfile, `${password}\n`);
    // As `docker login` writes it for Docker Hub: the key is index.docker.io's, not the upstream URL's host.
    const authfile = join(s.dir, 'config.json');
    await writeFile(
      authfile,
      JSON.stringify({
        auths: { 'https://index.docker.io/v1/': { auth: Buffer.from(`puller:${password}`).toString('base64') } },
      }),
    );
    for (const [i, creds] of [
      { username: 'puller', password },
      { username: 'puller', passwordfile },
      { authfile },
    ].entries()) {
      const cache = await startCache(dist.url, OFFICIAL, creds);
      caches.push(cache);
      const out = join(s.dir, `out-${i}`);
      await skopeoCopy(`docker://${cache.host}/docker.io/library/app:1`, `oci:${out}:x`, ['--all']);
      await assertLayoutHolds(out, 'x', idx);
    }
    // Distribution's own `proxy:` block with credentials: the whole registry caches that upstream, names without a host.
    const proxy = await startRegistry({ proxy: { remoteurl: dist.url, username: 'puller', password } });
    try {
      const out = join(s.dir, 'out-proxy');
      await skopeoCopy(`docker://${proxy.host}/library/app:1`, `oci:${out}:x`, ['--all']);
      await assertLayoutHolds(out, 'x', idx);
    } finally {
      await proxy.close();
    }
  } finally {
    for (const c of caches) await c.close();
    await dist.stop();
    await s.cleanup();
  }
});

test('Distribution 2.8 with htpasswd as the upstream: a wrong password fails fast, and the user is told upstream refused the cache', async (t) => {
  if (!needTools(t, 'skopeo', 'docker-registry', 'htpasswd')) return;
  const s = await scratch();
  const dist = await startBasicUpstream(s.dir, await makeMultiArch('distribution-wrong'), 'dist-pw-3391aa');
  const cache = await startCache(dist.url, OFFICIAL, { username: 'puller', password: 'not-the-password' });
  try {
    await assertRefusalExplained(t, cache, 'Basic, wrong password');
  } finally {
    await cache.close();
    await dist.stop();
    await s.cleanup();
  }
});

const SLUICE_UPSTREAM_ACCESS = {
  rules: [{ repos: ['library/**'], who: ['alice', 'robot:builder'], allow: ['pull', 'push'] }],
};

test("a Sluice upstream with bearer tokens: the cache gets a token with a user's or a robot's credentials and pulls", async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const fx = await startAuthRegistry({ access: SLUICE_UPSTREAM_ACCESS });
  const s = await scratch();
  const caches: TestCache[] = [];
  try {
    const img = await makeImage({ label: 'sluice-bearer' });
    await seed(s.dir, img, `docker://${fx.reg.host}/library/app:1`, `alice:${USERS.alice}`);
    // The upstream speaks Bearer: its challenge names its token realm.
    const challenge = await fetch(`${fx.reg.url}/v2/library/app/manifests/1`);
    assert.equal(challenge.status, 401);
    assert.match(challenge.headers.get('www-authenticate') ?? '', /^Bearer realm=/);
    for (const [i, creds] of [
      { username: 'alice', password: USERS.alice },
      { username: 'robot$builder', password: fx.robots.builder! },
    ].entries()) {
      const cache = await startCache(fx.reg.url, OFFICIAL, creds);
      caches.push(cache);
      const out = join(s.dir, `out-${i}`);
      await skopeoCopy(`docker://${cache.host}/docker.io/library/app:1`, `oci:${out}:x`);
      assert.equal(await layoutDigest(out, 'x'), img.digest);
      assert.deepEqual(await layoutBlob(out, img.config.descriptor.digest), img.config.bytes);
      for (const l of img.layers) assert.deepEqual(await layoutBlob(out, l.descriptor.digest), l.bytes);
    }
  } finally {
    for (const c of caches) await c.close();
    await s.cleanup();
    await fx.close();
  }
});

test('a Sluice upstream with bearer tokens: anonymous or a wrong password fails fast, and the user is told upstream refused the cache', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const fx = await startAuthRegistry({ access: SLUICE_UPSTREAM_ACCESS });
  const s = await scratch();
  const caches: TestCache[] = [];
  try {
    await seed(
      s.dir,
      await makeImage({ label: 'sluice-bearer-refused' }),
      `docker://${fx.reg.host}/library/app:1`,
      `alice:${USERS.alice}`,
    );
    for (const [what, creds] of [
      ['Bearer, anonymous', {}],
      ['Bearer, wrong password', { username: 'alice', password: 'wrong-password' }],
    ] as const) {
      const cache = await startCache(fx.reg.url, OFFICIAL, creds);
      caches.push(cache);
      await assertRefusalExplained(t, cache, what);
    }
  } finally {
    for (const c of caches) await c.close();
    await s.cleanup();
    await fx.close();
  }
});
