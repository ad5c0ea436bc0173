import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, type RunResult } from '../helpers/tools.js';

/** A containerd started by a test with its own root, state and socket. */
export interface TestContainerd {
  socket: string;
  ctr(args: string[]): Promise<RunResult>;
  stop(): Promise<void>;
}

/** Starts containerd (CRI disabled); the socket lives under /tmp to stay below the unix path limit. */
export async function startContainerd(): Promise<TestContainerd> {
  const dir = await mkdtemp('/tmp/sc-');
  const socket = join(dir, 'c.sock');
  await writeFile(
    join(dir, 'config.toml'),
    `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "${socket}"\n[ttrpc]\n  address = "${socket}.ttrpc"\n`,
  );
  const log = openSync(join(dir, 'containerd.log'), 'w');
  const child: ChildProcess = spawn('containerd', ['--config', join(dir, 'config.toml')], {
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const ctr = (args: string[]) => run('ctr', ['--address', socket, ...args]);
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) break;
    if (existsSync(socket) && (await ctr(['version'])).code === 0) return { socket, ctr, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  const text = await readFile(join(dir, 'containerd.log'), 'utf8').catch(() => '');
  await stop();
  throw new Error(`containerd did not become ready:\n${text.slice(-3000)}`);
}
