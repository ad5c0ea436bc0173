import assert from 'node:assert/strict';
import http from 'node:http';
import type { PassthroughResult } from '../../src/passthrough/run.js';
import { sluice } from '../helpers/sluice-cli.js';
import { DockerEngine } from '../../src/transport/docker-engine.js';
import { basic, startAuthRegistry, USERS, type AuthFixture } from '../auth/fixture.js';
import { after, before, type TestContext } from 'node:test';
import { dockerCli, hasDocker, startDockerd, type TestDaemon } from '../helpers/dockerd.js';
export { loadImage as loadLocal } from '../helpers/dockerd.js';
import type { TestImage } from '../helpers/images.js';
import { needTools, run } from '../helpers/tools.js';

/** Starts dockerd with extra flags (`--registry-mirror URL`, so docker.io pulls land on a local registry and RepoDigests still say docker.io). */
export function startDockerdWith(extra: string[]): Promise<TestDaemon> {
  return startDockerd(extra);
}

/** One Engine API call over a daemon's socket; resolves with the status and the whole body. */
export function engineCall(
  socket: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path, method, headers: { host: 'docker', ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Pulls as `docker pull` does (`POST /images/create`), with credentials in X-Registry-Auth when given:
 * the daemon sends them to its registry mirror too, which is how a private docker.io image gets onto the host.
 */
export async function pull(
  daemon: TestDaemon,
  reference: string,
  auth?: { username: string; password: string; serveraddress: string },
): Promise<void> {
  const colon = reference.lastIndexOf(':');
  const [name, tag] =
    colon > reference.lastIndexOf('/')
      ? [reference.slice(0, colon), reference.slice(colon + 1)]
      : [reference, 'latest'];
  const headers: Record<string, string> = auth
    ? { 'x-registry-auth': Buffer.from(JSON.stringify(auth)).toString('base64url') }
    : {};
  const r = await engineCall(
    daemon.socket,
    'POST',
    `/images/create?fromImage=${encodeURIComponent(name)}&tag=${encodeURIComponent(tag)}`,
    headers,
  );
  // A failed pull still answers 200, with an error message in the stream.
  if (r.status !== 200 || /"error"/.test(r.body))
    throw new Error(`pull ${reference} failed: HTTP ${r.status} ${r.body.slice(-500)}`);
}

/** Removes every image from a daemon (between test cases on one shared inner daemon). */
export async function clearImages(daemon: TestDaemon): Promise<void> {
  const list = JSON.parse((await engineCall(daemon.socket, 'GET', '/images/json')).body) as { Id: string }[];
  for (const i of list) {
    const r = await engineCall(daemon.socket, 'DELETE', `/images/${i.Id}?force=1`);
    if (r.status !== 200 && r.status !== 404) throw new Error(`cannot remove ${i.Id}: ${r.status} ${r.body}`);
  }
}

/** RepoTag → image ID of every tagged image on a daemon. */
export async function tagsOf(daemon: TestDaemon): Promise<Record<string, string>> {
  const engine = new DockerEngine(daemon.host);
  const out: Record<string, string> = {};
  for (const i of await engine.listImages()) for (const t of i.repoTags) out[t] = i.id;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Pushes an image with Basic credentials (or none). */
export async function pushAs(url: string, repo: string, tag: string, img: TestImage, auth?: string): Promise<void> {
  const h: Record<string, string> = auth ? { authorization: auth } : {};
  for (const blob of [img.config, ...img.layers]) {
    const r = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${blob.descriptor.digest}`, {
      method: 'POST',
      body: blob.bytes,
      headers: { ...h, 'content-type': 'application/octet-stream' },
    });
    if (r.status !== 201) throw new Error(`blob push to ${repo} failed: ${r.status} ${await r.text()}`);
  }
  const r = await fetch(`${url}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    body: img.manifest,
    headers: { ...h, 'content-type': img.mediaType },
  });
  if (r.status !== 201) throw new Error(`manifest push ${repo}:${tag} failed: ${r.status} ${await r.text()}`);
}

/** A Docker Hub stand-in where some names need a login: Docker Hub's private repositories. */
export async function startHubStandIn(privateRepos: string[]): Promise<AuthFixture> {
  return startAuthRegistry({
    access: {
      rules: [
        { name: 'private repositories', repos: privateRepos, who: ['anonymous'], deny: ['pull', 'push'] },
        { repos: ['**'], who: ['*'], allow: ['pull', 'push', 'overwrite', 'list'] },
      ],
    },
  });
}

/** A registry where everything needs a login. */
export async function startPrivateRegistry(): Promise<AuthFixture> {
  return startAuthRegistry({
    access: { rules: [{ repos: ['**'], who: ['authenticated'], allow: ['pull', 'push', 'overwrite', 'list'] }] },
  });
}

/** alice's Basic header and X-Registry-Auth body for a registry host. */
export function alice(serveraddress: string): {
  header: string;
  auth: { username: string; password: string; serveraddress: string };
} {
  return { header: basic('alice', USERS.alice), auth: { username: 'alice', password: USERS.alice, serveraddress } };
}

/** Runs the Docker CLI against a daemon without throwing. */
export function dockerMay(daemon: TestDaemon, args: string[]): ReturnType<typeof run> {
  return run(dockerCli(), ['-H', daemon.host, ...args]);
}

/**
 * One set of daemons and registries shared by every test of a file: set up before them where dockerd
 * can run, torn down after. The returned function gives a test the world, or undefined when the test
 * is skipped for want of dockerd; a failed set-up fails each test with its error.
 */
export function sharedWorld<W>(
  setUp: () => Promise<W>,
  tearDown: (w: W) => Promise<void>,
): (t: TestContext) => W | undefined {
  let world: W | undefined;
  let setupError: unknown;
  before(async () => {
    if (!hasDocker()) return;
    try {
      world = await setUp();
    } catch (e) {
      setupError = e;
    }
  });
  after(async () => {
    if (world) await tearDown(world);
  });
  return (t) => {
    if (!hasDocker() && !needTools(t, 'dockerd', 'docker')) return undefined;
    if (setupError) throw setupError;
    return world;
  };
}

/** A hub stand-in (a Sluice as docker.io) and the two daemons a passthrough runs between. */
export interface HubWorld {
  hub: { url: string };
  host: TestDaemon;
  inner: TestDaemon;
}

/** Runs `sluice passthrough --json --mode all` from the host daemon into the emptied inner one, docker.io at the hub. */
export async function passthroughAll(
  w: HubWorld,
  args: string[],
): Promise<PassthroughResult & { stderr: string; code: number }> {
  await clearImages(w.inner);
  const r = await sluice(
    [
      'passthrough',
      '--json',
      '--mode',
      'all',
      '--from',
      w.host.host,
      '--to',
      w.inner.host,
      '--upstream',
      `docker.io=${w.hub.url}`,
      ...args,
    ],
    { DOCKER_HOST: '' },
  );
  assert.ok(r.stdout.trim().startsWith('{'), `sluice passthrough printed no JSON (exit ${r.code}): ${r.stderr}`);
  return { ...(JSON.parse(r.stdout) as PassthroughResult), stderr: r.stderr, code: r.code };
}
