import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

// The flushes and directory creation the filesystem driver's writes are built on: what makes a write durable.

export function errorCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

export function isMissing(e: unknown): boolean {
  const code = errorCode(e);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Flushes a file's bytes to the disk (fdatasync: enough to read them back after a crash). */
export async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/**
 * Flushes a directory, so the names created or renamed in it survive a crash. Some filesystems cannot
 * sync a directory (EINVAL), nor can Windows open one; their renames are as durable as they get.
 */
async function syncDir(path: string): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if (['EISDIR', 'EPERM', 'EACCES'].includes(errorCode(e) ?? '')) return;
    throw e;
  }
  try {
    await fh.sync();
  } catch (e) {
    if (!['EINVAL', 'ENOTSUP', 'EBADF'].includes(errorCode(e) ?? '')) throw e;
  } finally {
    await fh.close();
  }
}

/**
 * Flushes directories together, after the rename: the file's bytes are on disk already, so a crash before
 * these land loses the new name whole (the object is absent), never half of it; and flushes issued at
 * once share a journal commit on ext4 and XFS instead of waiting for one each.
 */
export async function syncDirs(dirs: string[]): Promise<void> {
  await Promise.all([...new Set(dirs)].map(syncDir));
}

/**
 * Node's recursive mkdir answers ENOENT whatever stopped it below an existing directory (EROFS on a
 * read-only mount, EACCES): one plain mkdir under the deepest existing ancestor tells the real reason.
 */
export async function mkdirCause(dir: string, reported: unknown): Promise<unknown> {
  for (let child = dir, parent = dirname(dir); parent !== child; child = parent, parent = dirname(parent)) {
    if (
      !(await stat(parent).then(
        (s) => s.isDirectory(),
        () => false,
      ))
    )
      continue;
    try {
      await mkdir(child);
    } catch (e) {
      if (errorCode(e) !== 'EEXIST') return e;
    }
    break;
  }
  return reported;
}
