import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startContainerd } from '../auth/containerd.js';
import { podmanIn, scratch, skopeo, skopeoMay } from '../helpers/clients.js';
import { dockerCli, hasDocker, startDockerd } from '../helpers/dockerd.js';
import { makeImage, writeOciLayout, type TestImage } from '../helpers/images.js';
import {
  makePki,
  startConnectProxy,
  startTlsRegistry,
  tlsGet,
  UNRESOLVABLE_HOST,
  writeCertDir,
  type TestPki,
  type TlsRegistry,
} from '../helpers/tls.js';
import { missing, needTools, run } from '../helpers/tools.js';

// Real clients against Sluice's http.tls: each verifies Sluice's certificate against the test CA (no
// --tls-verify=false anywhere) and, with clientcas, must present a client certificate.

let pki: TestPki | undefined;
let image: TestImage | undefined;
let work: { dir: string; cleanup: () => Promise<void> } | undefined;
const noOpenssl = missing('openssl');

before(async () => {
  if (noOpenssl) return;
  pki = await makePki();
  work = await scratch('sluice-tls-clients-');
  image = await makeImage({ label: 'tls' });
  await writeOciLayout(join(work.dir, 'layout'), [{ tag: 'v1', image }]);
});
after(async () => {
  await pki?.cleanup();
  await work?.cleanup();
});

/** A cert dir as skopeo, podman and dockerd read it: the test CA, with or without the client pair. */
async function certDir(name: string, opts: { client?: boolean; ca?: 'test' | 'other' } = {}): Promise<string> {
  const dir = join(work!.dir, name);
  await mkdir(dir, { recursive: true });
  if (opts.ca === 'other') await writeCertDir(dir, { ...pki!, caCert: pki!.otherCaCert });
  else await writeCertDir(dir, pki!, opts.client ? { cert: pki!.clientCert, key: pki!.clientKey } : undefined);
  return dir;
}

function layoutRef(): string {
  return `oci:${join(work!.dir, 'layout')}:v1`;
}

async function manifestDigest(
  reg: TlsRegistry,
  repo: string,
  tag: string,
  client: boolean,
): Promise<string | undefined> {
  const p = pki!;
  const r = await tlsGet(`${reg.url}/v2/${repo}/manifests/${tag}`, {
    ca: p.caCert,
    ...(client ? { cert: p.clientCert, key: p.clientKey } : {}),
  });
  return r.status === 200 ? (await import('../../src/oci/digest.js')).digestOf(Buffer.from(r.body)) : undefined;
}

async function clientCasRegistry(): Promise<TlsRegistry> {
  const p = pki!;
  return startTlsRegistry({ certificate: p.serverCert, key: p.serverKey, clientcas: [p.caCert] });
}

test('skopeo pushes and inspects over HTTPS with --cert-dir; an untrusted CA and a missing client certificate are refused', {
  skip: noOpenssl,
}, async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const p = pki!;
  const plain = await startTlsRegistry({ certificate: p.serverCert, key: p.serverKey });
  try {
    const trusted = await certDir('skopeo-ca');
    await skopeo(['copy', '--dest-cert-dir', trusted, layoutRef(), `docker://${plain.host}/tls/skopeo:v1`]);
    assert.equal(await manifestDigest(plain, 'tls/skopeo', 'v1', false), image!.digest);
    const wrong = await skopeoMay([
      'copy',
      '--dest-cert-dir',
      await certDir('skopeo-other', { ca: 'other' }),
      layoutRef(),
      `docker://${plain.host}/tls/skopeo:v2`,
    ]);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /x509|certificate/i);
  } finally {
    await plain.close();
  }
  const strict = await clientCasRegistry();
  try {
    const without = await skopeoMay([
      'copy',
      '--dest-cert-dir',
      await certDir('skopeo-ca-only'),
      layoutRef(),
      `docker://${strict.host}/tls/skopeo:v1`,
    ]);
    assert.notEqual(without.code, 0, 'no client certificate, no push');
    assert.match(without.stderr, /certificate required|bad certificate|handshake|tls/i);
    assert.equal(await manifestDigest(strict, 'tls/skopeo', 'v1', true), undefined);
    const withCert = await certDir('skopeo-client', { client: true });
    await skopeo(['copy', '--dest-cert-dir', withCert, layoutRef(), `docker://${strict.host}/tls/skopeo:v1`]);
    assert.equal(await manifestDigest(strict, 'tls/skopeo', 'v1', true), image!.digest);
    const inspected = await skopeo([
      'inspect',
      '--raw',
      '--cert-dir',
      withCert,
      `docker://${strict.host}/tls/skopeo:v1`,
    ]);
    assert.equal(inspected.stdout, image!.manifest.toString());
  } finally {
    await strict.close();
  }
});

test('podman pulls and pushes with --cert-dir and a client certificate; without one it is refused', {
  skip: noOpenssl,
}, async (t) => {
  if (!needTools(t, 'podman', 'skopeo')) return;
  const reg = await clientCasRegistry();
  const withCert = await certDir('podman-client', { client: true });
  const podman = podmanIn(join(work!.dir, 'podman'));
  try {
    await skopeo(['copy', '--dest-cert-dir', withCert, layoutRef(), `docker://${reg.host}/tls/podman:v1`]);
    const refused = await podman.runMay([
      'pull',
      '--cert-dir',
      await certDir('podman-ca-only'),
      `${reg.host}/tls/podman:v1`,
    ]);
    assert.notEqual(refused.code, 0, 'no client certificate, no pull');
    await podman.run(['pull', '--cert-dir', withCert, `${reg.host}/tls/podman:v1`]);
    await podman.run(['push', '--cert-dir', withCert, `${reg.host}/tls/podman:v1`, `${reg.host}/tls/podman:pushed`]);
    assert.ok(await manifestDigest(reg, 'tls/podman', 'pushed', true), 'podman pushed over HTTPS');
  } finally {
    await reg.close();
  }
});

test('ctr pulls with --tlscacert, --tlscert and --tlskey; without the client certificate or with another CA it is refused', {
  skip: noOpenssl,
}, async (t) => {
  if (!needTools(t, 'containerd', 'ctr', 'skopeo')) return;
  const p = pki!;
  const reg = await clientCasRegistry();
  const c = await startContainerd();
  try {
    await skopeo([
      'copy',
      '--dest-cert-dir',
      await certDir('ctr-client', { client: true }),
      layoutRef(),
      `docker://${reg.host}/tls/ctr:v1`,
    ]);
    // ctr 1.6 speaks plain HTTP to any loopback registry unless a hosts.toml names https.
    const hostsDir = join(work!.dir, 'ctr-hosts');
    await mkdir(join(hostsDir, reg.host), { recursive: true });
    await writeFile(
      join(hostsDir, reg.host, 'hosts.toml'),
      `server = "https://${reg.host}"\n[host."https://${reg.host}"]\n  capabilities = ["pull", "resolve", "push"]\n`,
    );
    const ref = `${reg.host}/tls/ctr:v1`;
    const pull = (tls: string[]) => c.ctr(['images', 'pull', '--hosts-dir', hostsDir, ...tls, ref]);
    const refused = await pull(['--tlscacert', p.caCert]);
    assert.notEqual(refused.code, 0, 'no client certificate, no pull');
    assert.match(refused.stderr, /https:\/\/127\.0\.0\.1.*(certificate required|bad certificate|EOF|reset|tls)/i);
    const untrusted = await pull(['--tlscacert', p.otherCaCert, '--tlscert', p.clientCert, '--tlskey', p.clientKey]);
    assert.notEqual(untrusted.code, 0, 'the server certificate is checked');
    assert.match(untrusted.stderr, /x509: certificate signed by unknown authority/);
    const ok = await pull(['--tlscacert', p.caCert, '--tlscert', p.clientCert, '--tlskey', p.clientKey]);
    assert.equal(ok.code, 0, ok.stderr);
    const list = await c.ctr(['images', 'list', '-q']);
    assert.ok(list.stdout.split('\n').includes(ref), list.stdout);
  } finally {
    await c.stop();
    await reg.close();
  }
});

function canRunDocker(t: TestContext): boolean {
  if (!needTools(t, 'dockerd')) return false;
  if (!hasDocker()) return needTools(t, 'docker');
  if (process.getuid?.() !== 0) {
    t.skip('dockerd reads certs.d only from /etc/docker/certs.d, which needs root');
    return false;
  }
  return true;
}

test('docker pulls and pushes with /etc/docker/certs.d (CA and client certificate); without the client certificate or with another CA it is refused', {
  skip: noOpenssl,
}, async (t) => {
  if (!canRunDocker(t)) return;
  const p = pki!;
  const reg = await clientCasRegistry();
  // dockerd treats 127.0.0.0/8 as insecure (no certificate check, no certs.d), so the registry is named
  // with a host that resolves nowhere and dockerd reaches it through a CONNECT proxy.
  const proxy = await startConnectProxy();
  const name = `${UNRESOLVABLE_HOST}:${reg.port}`;
  const certsD = join('/etc/docker/certs.d', name);
  const saved = process.env.HTTPS_PROXY;
  process.env.HTTPS_PROXY = proxy.url;
  let daemon: Awaited<ReturnType<typeof startDockerd>> | undefined;
  try {
    daemon = await startDockerd();
    if (saved === undefined) delete process.env.HTTPS_PROXY;
    else process.env.HTTPS_PROXY = saved;
    await skopeo([
      'copy',
      '--dest-cert-dir',
      await certDir('docker-seed', { client: true }),
      layoutRef(),
      `docker://${reg.host}/tls/docker:v1`,
    ]);
    const docker = (args: string[]) => run(dockerCli(), ['-H', daemon!.host, ...args]);

    await mkdir(certsD, { recursive: true });
    await writeCertDir(certsD, p);
    const noClient = await docker(['pull', `${name}/tls/docker:v1`]);
    assert.notEqual(noClient.code, 0);
    assert.match(noClient.stderr, /certificate required/);

    await rm(certsD, { recursive: true, force: true });
    await mkdir(certsD, { recursive: true });
    await writeCertDir(certsD, { ...p, caCert: p.otherCaCert }, { cert: p.clientCert, key: p.clientKey });
    const otherCa = await docker(['pull', `${name}/tls/docker:v1`]);
    assert.notEqual(otherCa.code, 0);
    assert.match(otherCa.stderr, /x509|certificate signed by unknown authority/);

    await rm(certsD, { recursive: true, force: true });
    await mkdir(certsD, { recursive: true });
    await writeCertDir(certsD, p, { cert: p.clientCert, key: p.clientKey });
    const pulled = await docker(['pull', `${name}/tls/docker:v1`]);
    assert.equal(pulled.code, 0, pulled.stderr);
    await daemon.docker(['tag', `${name}/tls/docker:v1`, `${name}/tls/docker:pushed`]);
    const pushed = await docker(['push', `${name}/tls/docker:pushed`]);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.ok(await manifestDigest(reg, 'tls/docker', 'pushed', true), 'docker pushed over HTTPS');
    assert.ok(
      proxy.tunnels.every((h) => h === name) && proxy.tunnels.length > 0,
      `dockerd went through the proxy: ${proxy.tunnels.join(', ')}`,
    );
  } finally {
    if (process.env.HTTPS_PROXY === proxy.url) {
      if (saved === undefined) delete process.env.HTTPS_PROXY;
      else process.env.HTTPS_PROXY = saved;
    }
    if (existsSync(certsD)) await rm(certsD, { recursive: true, force: true });
    await daemon?.stop();
    await proxy.close();
    await reg.close();
  }
});
