import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile } from 'node:child_process';

/** Runs mount/umount (they read nothing, so no stdin), resolving with the exit code and stderr. */
function sh(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr: String(stderr) });
    });
  });
}

/** A tmpfs mounted for one test: a real filesystem that can be small, or read-only, on demand. */
export interface TestMount {
  dir: string;
  /** `mount -o remount,OPTIONS`: e.g. `ro` to make a live root unwritable. */
  remount(options: string): Promise<void>;
  /** Unmounts (retrying briefly while a closing server still holds a file) and removes the directory. */
  unmount(): Promise<void>;
}

/** Mounts a tmpfs with `options` (`size=4m`, `ro`) at a fresh directory; null where mounting is not allowed (not root). */
export async function mountTmpfs(options: string): Promise<TestMount | null> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-mount-'));
  const r = await sh('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  if (r.code !== 0) {
    await rm(dir, { recursive: true, force: true });
    return null;
  }
  return {
    dir,
    remount: async (opts) => {
      const m = await sh('mount', ['-o', `remount,${opts}`, dir]);
      if (m.code !== 0) throw new Error(`mount -o remount,${opts} ${dir} failed: ${m.stderr}`);
    },
    unmount: async () => {
      let last = '';
      for (let i = 0; i < 50; i++) {
        const u = await sh('umount', [dir]);
        if (u.code === 0) {
          await rm(dir, { recursive: true, force: true });
          return;
        }
        last = u.stderr;
        await sleep(100);
      }
      throw new Error(`umount ${dir} failed: ${last}`);
    },
  };
}

/** The reason to skip a test that needs `mountTmpfs`. */
export const cannotMount = 'mounting a tmpfs is not permitted here (needs root)';
