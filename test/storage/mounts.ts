import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from '../helpers/tools.js';

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
  const r = await run('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { timeoutMs: 10_000 }).catch(() => null);
  if (!r || r.code !== 0) {
    await rm(dir, { recursive: true, force: true });
    return null;
  }
  return {
    dir,
    remount: async (opts) => {
      const m = await run('mount', ['-o', `remount,${opts}`, dir], { timeoutMs: 10_000 });
      if (m.code !== 0) throw new Error(`mount -o remount,${opts} ${dir} failed: ${m.stderr}`);
    },
    unmount: async () => {
      let last = '';
      for (let i = 0; i < 50; i++) {
        const u = await run('umount', [dir], { timeoutMs: 10_000 });
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
