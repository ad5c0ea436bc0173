import { isStorageFull, type StorageDriver } from './driver.js';
import { healthProbePath } from './layout.js';

/** Why a storage cannot serve, in one line that names where it is: `<location> is not writable (EROFS)`. */
export class StorageUnusableError extends Error {
  constructor(
    message: string,
    /** The error code behind it (EACCES, EROFS, ENOSPC...), when there is one. */
    readonly code?: string,
  ) {
    super(message);
  }
}

function where(driver: StorageDriver): string {
  return driver.location ?? `${driver.name} storage`;
}

function because(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

/** Proves the storage can be read: its root is a directory (or absent: an empty registry) and can be listed. */
export async function probeRead(driver: StorageDriver): Promise<void> {
  let root: Awaited<ReturnType<typeof driver.stat>>;
  try {
    root = await driver.stat('');
    await driver.list('');
  } catch (e) {
    throw new StorageUnusableError(
      `${where(driver)} is not readable (${because(e)})`,
      (e as NodeJS.ErrnoException).code,
    );
  }
  if (root && !root.isDirectory) throw new StorageUnusableError(`${where(driver)} is not a directory`, 'ENOTDIR');
}

/** Proves the storage takes writes now: writes, then deletes, a small object of this process's own. */
export async function probeWrite(driver: StorageDriver): Promise<void> {
  await probeRead(driver);
  const path = healthProbePath(process.pid);
  try {
    await driver.putContent(path, Buffer.from(new Date().toISOString()));
    await driver.delete(path);
  } catch (e) {
    const why = isStorageFull(e) ? `${because(e)}: no space left` : because(e);
    throw new StorageUnusableError(`${where(driver)} is not writable (${why})`, (e as NodeJS.ErrnoException).code);
  }
}

/**
 * Checks the storage before the registry starts: a registry that would answer every push with 500 must
 * not start. A read-only registry needs only to read. A full disk is no reason to stop serving pulls:
 * it is returned as a warning to log instead of thrown.
 */
export async function checkStorageAtStart(driver: StorageDriver, readOnly: boolean): Promise<string | undefined> {
  try {
    await (readOnly ? probeRead(driver) : probeWrite(driver));
  } catch (e) {
    if (e instanceof StorageUnusableError && isStorageFull(e))
      return `${e.message}: pushes will fail until space is freed`;
    throw e;
  }
  return undefined;
}

/**
 * The storage half of /healthz: probes at most once per `intervalMs` (a probe writes a file), and
 * callers in between share the last answer, so a load balancer polling often costs next to nothing.
 */
export class StorageHealth {
  private last: { at: number; result: Promise<void> } | undefined;

  constructor(
    private readonly driver: StorageDriver,
    private readonly readOnly: boolean,
    private readonly intervalMs = 5000,
  ) {}

  /** Resolves when the storage is usable (writable, or readable on a read-only registry); rejects with why not. */
  check(): Promise<void> {
    const now = Date.now();
    if (!this.last || now - this.last.at >= this.intervalMs) {
      const result = this.readOnly ? probeRead(this.driver) : probeWrite(this.driver);
      // Observed here so a failed probe nobody awaits again is never an unhandled rejection.
      result.catch(() => undefined);
      this.last = { at: now, result };
    }
    return this.last.result;
  }
}
