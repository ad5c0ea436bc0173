import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CopySummary } from '../../src/copy/copy.js';
import { freePort, waitForHttp } from './clients.js';
import { run, type RunResult } from './tools.js';

/** The `sluice` executable of this checkout. */
export const SLUICE_BIN = fileURLToPath(new URL('../../../bin/sluice.js', import.meta.url));

/** Runs `sluice ARGS` as a child process and returns its exit code and output. */
export function sluice(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return run(process.execPath, [SLUICE_BIN, ...args], { env });
}

/** Runs `sluice copy --json SRC DST EXTRA…`, asserting success, and returns the summary. */
export async function sluiceCopy(
  src: string,
  dst: string,
  extra: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<CopySummary> {
  const r = await sluice(['copy', '--json', ...extra, src, dst], env);
  if (r.code !== 0) throw new Error(`sluice copy ${src} ${dst} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as CopySummary;
}

/** How long a SIGTERM'd child may take to exit before it is killed. */
const STOP_MS = 15_000;

/** A `sluice serve` child process (so a test can kill it like a crash). */
export interface SluiceProcess {
  child: ChildProcess;
  url: string;
  host: string;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts `sluice serve --addr 127.0.0.1:PORT [--root ROOT] [--config CFG]` on a free port (or `port`);
 * without a root the config's storage is used (storage.s3).
 */
export async function startSluiceProcess(
  root: string | undefined,
  opts: { port?: number; config?: string; nodeArgs?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<SluiceProcess> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = opts.port ?? (await freePort());
    const args = [
      ...(opts.nodeArgs ?? []),
      SLUICE_BIN,
      'serve',
      '--addr',
      `127.0.0.1:${port}`,
      ...(root === undefined ? [] : ['--root', root]),
    ];
    if (opts.config) args.push('--config', opts.config);
    const env = opts.env ? { ...process.env, ...opts.env } : process.env;
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<void>((res) => child.once('exit', () => res()));
    // A graceful stop drains for up to http.draintimeout (60 s): past STOP_MS the child is killed, so no test waits on it.
    const signal = async (sig: NodeJS.Signals) => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(sig);
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_MS);
        await exited;
        clearTimeout(timer);
      }
    };
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitForHttp(`${url}/v2/`, child);
      return { child, url, host: `127.0.0.1:${port}`, kill: () => signal('SIGKILL'), stop: () => signal('SIGTERM') };
    } catch (e) {
      lastError = new Error(`${(e as Error).message}\n${stderr}`);
      await signal('SIGKILL');
      if (opts.port) break;
    }
  }
  throw lastError;
}
