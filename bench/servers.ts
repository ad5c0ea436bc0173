import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Which registry a server process is. */
export type ServerKind = 'sluice' | 'distribution';

/** A registry process started for the bench, with storage in a fresh temporary directory. */
export interface BenchServer {
  kind: ServerKind;
  pid: number;
  /** `127.0.0.1:PORT`, as clients name it. */
  host: string;
  url: string;
  root: string;
  /** Peak resident set size so far (VmHWM), in bytes. */
  peakRss(): number;
  /** Current resident set size (VmRSS), in bytes. */
  rss(): number;
  /** CPU time the process has used so far (user + system, all threads), in milliseconds. */
  cpuMs(): number;
  stop(): Promise<void>;
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** True when a command is on PATH. */
export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** A port that was free a moment ago (both servers need it on the command line, not port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function procStatus(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** CPU time a process has used so far (user + system), in milliseconds. */
export function procCpuMs(pid: number): number {
  try {
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th, in clock ticks (100 Hz).
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

async function waitReady(url: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${stderr()}`);
    try {
      const r = await fetch(`${url}/v2/`);
      await r.arrayBuffer();
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server at ${url} did not become ready: ${stderr()}`);
}

/** How to start a bench server beyond the defaults. */
export interface ServerOptions {
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  sluiceBin?: string;
  /** YAML appended to the config file (top-level keys the default config lacks: `proxy:`, `upstreams:`). */
  extraConfig?: string;
  /** Distribution only: every access-log line (combined format, with the bytes sent), for counting upstream traffic. */
  accessLog?: (line: string) => void;
  /** YAML for the `storage:` key instead of a fresh filesystem root (an `s3:` block); Sluice then gets no `--root`. */
  storage?: string;
}

/** Starts one registry process on a fresh port with a fresh storage root. */
export async function startServer(kind: ServerKind, opts: ServerOptions = {}): Promise<BenchServer> {
  const dir = await mkdtemp(join(tmpdir(), `sluice-bench-${kind}-`));
  const root = join(dir, 'data');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const storage = opts.storage ?? `{filesystem: {rootdirectory: ${root}}, delete: {enabled: true}}`;
  let child: ChildProcess;
  if (kind === 'sluice') {
    const cfg = join(dir, 'config.yml');
    await writeFile(
      cfg,
      `log: {level: error}\nstorage: ${storage}\nhttp: {addr: "${host}"}\n${opts.extraConfig ?? ''}`,
    );
    const rootArgs = opts.storage ? [] : ['--root', root];
    child = spawn(
      process.execPath,
      [
        ...(opts.nodeArgs ?? []),
        opts.sluiceBin ?? join(repoRoot, 'bin/sluice.js'),
        'serve',
        '--config',
        cfg,
        '--addr',
        host,
        ...rootArgs,
      ],
      {
        cwd: dir,
        env: { ...process.env, SLUICE_LOG_LEVEL: 'error', ...opts.env },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
  } else {
    const cfg = join(dir, 'config.yml');
    const log = opts.accessLog ? '{level: error, accesslog: {disabled: false}}' : '{level: error}';
    await writeFile(
      cfg,
      `version: 0.1\nlog: ${log}\nstorage: ${storage}\nhttp: {addr: "${host}"}\n${opts.extraConfig ?? ''}`,
    );
    child = spawn('docker-registry', ['serve', cfg], {
      cwd: dir,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', opts.accessLog ? 'pipe' : 'ignore', 'pipe'],
    });
    if (opts.accessLog && child.stdout) createInterface({ input: child.stdout }).on('line', opts.accessLog);
  }
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  const url = `http://${host}`;
  try {
    await waitReady(url, child, () => err);
  } catch (e) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const pid = child.pid!;
  return {
    kind,
    pid,
    host,
    url,
    root,
    peakRss: () => procStatus(pid, 'VmHWM'),
    rss: () => procStatus(pid, 'VmRSS'),
    cpuMs: () => procCpuMs(pid),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Samples a server's VmRSS while `fn` runs; resolves with fn's result and the highest sample. */
export async function sampleRss<T>(
  server: BenchServer,
  fn: () => Promise<T>,
  everyMs = 50,
): Promise<{ value: T; maxRss: number }> {
  let max = server.rss();
  const timer = setInterval(() => {
    max = Math.max(max, server.rss());
  }, everyMs);
  try {
    const value = await fn();
    max = Math.max(max, server.rss());
    return { value, maxRss: max };
  } finally {
    clearInterval(timer);
  }
}
