import { spawn, spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/** True when CI asked for every client to be present: a missing one then fails instead of skipping. */
export const clientsRequired =
  process.env.SLUICE_REQUIRE_CLIENTS === '1' || process.env.SLUICE_REQUIRE_CLIENTS === 'true';

/** Whether a command is on PATH. */
export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Returns a skip reason when a client is missing, for `test(..., { skip: missing('skopeo') })`.
 * With SLUICE_REQUIRE_CLIENTS=1 (CI) a missing client throws, so the suite fails loudly.
 */
export function missing(...names: string[]): string | false {
  const absent = names.filter((n) => !hasTool(n));
  if (absent.length === 0) return false;
  const reason = `${absent.join(', ')} not installed (apt-get install ${absent.join(' ')})`;
  if (clientsRequired) throw new Error(`SLUICE_REQUIRE_CLIENTS is set but ${reason}`);
  return reason;
}

/** Skips the running test when a client is missing (or fails it under SLUICE_REQUIRE_CLIENTS). */
export function needTools(t: TestContext, ...names: string[]): boolean {
  const reason = missing(...names);
  if (reason) {
    t.skip(reason);
    return false;
  }
  return true;
}

/** Result of a command run by a test. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without a shell; resolves with its exit code and output (never rejects on non-zero). */
export function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    // Its own process group, so a timeout also stops what it started (the bench's registries, dockerds and
    // S3 server): killed alone, those kept its output pipes open and the test waited on them for ever.
    const child = spawn(cmd, args, {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let settled = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timeoutMs = opts.timeoutMs ?? 300_000;
    const timer = setTimeout(() => {
      stderr += `\n[test helper: ${cmd} killed after ${timeoutMs / 1000} s, with its process group]\n`;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    const done = (code: number | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    };
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', done);
    // A descendant that outlives the command may still hold its pipes: its output so far is the answer.
    child.on('exit', (code) => {
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        done(code);
      }, 5_000).unref();
    });
    // A child that exits before reading its input closes the pipe: that EPIPE is the child's business, not a failure here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs a command and throws with its output when it fails. */
export async function runOk(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}
