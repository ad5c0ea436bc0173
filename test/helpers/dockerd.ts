import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, Agent } from 'undici';
import { copyImage } from '../../src/copy/copy.js';
import { openDestination, openSource } from '../../src/transport/index.js';
import { writeOciLayout, type TestImage } from './images.js';
import { hasTool, runOk, type RunResult } from './tools.js';

/** A dockerd started by a test, with its own data root, exec root and socket. */
export interface TestDaemon {
  /** `unix:///tmp/sd-XXXX/docker.sock`, for DOCKER_HOST or --daemon-host. */
  host: string;
  socket: string;
  dir: string;
  /** Runs the Docker CLI against this daemon and throws on failure. */
  docker(args: string[]): Promise<RunResult>;
  /** What dockerd has logged so far. */
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** The Docker CLI: the newer one in /usr/local/bin when present, else Debian's. */
export function dockerCli(): string {
  return existsSync('/usr/local/bin/docker') ? '/usr/local/bin/docker' : 'docker';
}

/** True when a daemon and a CLI can be started here. */
export function hasDocker(): boolean {
  return hasTool('dockerd') && (existsSync('/usr/local/bin/docker') || hasTool('docker'));
}

async function ping(socket: string): Promise<boolean> {
  const agent = new Agent({ connect: { socketPath: socket } });
  try {
    const r = await request('http://docker/_ping', { dispatcher: agent });
    await r.body.text();
    return r.statusCode === 200;
  } catch {
    return false;
  } finally {
    await agent.close();
  }
}

/**
 * Starts dockerd with vfs storage and no networking setup, plus `extra` flags (`--registry-mirror URL`,
 * `--config-file FILE`). Sockets live under /tmp/sd-XXXX because a unix socket path must stay under
 * about 108 bytes.
 */
export async function startDockerd(extra: string[] = []): Promise<TestDaemon> {
  const dir = await mkdtemp('/tmp/sd-');
  const socket = join(dir, 'docker.sock');
  const log = openSync(join(dir, 'dockerd.log'), 'w');
  const child: ChildProcess = spawn(
    'dockerd',
    [
      '--storage-driver=vfs',
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'pid'),
      '--host',
      `unix://${socket}`,
      ...extra,
    ],
    { stdio: ['ignore', log, log] },
  );
  closeSync(log);
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    // dockerd's own containerd can still be writing under exec/ for a moment after dockerd exits.
    for (let i = 0; i < 50 && existsSync(dir); i++) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      if (existsSync(dir)) await new Promise((r) => setTimeout(r, 100));
    }
  };
  // Readiness is a bounded number of pings, not a timing assertion.
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) break;
    if (existsSync(socket) && (await ping(socket))) {
      const host = `unix://${socket}`;
      const logText = () => readFile(join(dir, 'dockerd.log'), 'utf8').catch(() => '');
      return { host, socket, dir, docker: (args) => runOk(dockerCli(), ['-H', host, ...args]), log: logText, stop };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const text = await readFile(join(dir, 'dockerd.log'), 'utf8').catch(() => '');
  await stop();
  throw new Error(`dockerd did not become ready:\n${text.slice(-4000)}`);
}

/** Puts an image into a daemon as a local build would leave it (no RepoDigest): `docker load` of an archive Sluice writes. */
export async function loadImage(daemon: TestDaemon, image: TestImage, name: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-load-'));
  try {
    await writeOciLayout(join(dir, 'layout'), [{ tag: 'v1', image }]);
    const src = await openSource(`oci:${join(dir, 'layout')}:v1`);
    const dst = await openDestination(`docker-archive:${join(dir, 'img.tar')}:${name}`);
    try {
      await copyImage(src, dst);
    } finally {
      await src.close();
      await dst.close();
    }
    await daemon.docker(['load', '-i', join(dir, 'img.tar')]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
