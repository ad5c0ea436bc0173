import {
  createWriteStream,
  readFile as readFileCb,
  stat as statCb,
  type Dirent,
  type Stats,
  type WriteStream,
} from 'node:fs';
import {
  lstat,
  mkdir,
  open,
  readdir,
  rename,
  rm,
  rmdir,
  stat,
  truncate,
  unlink,
  type FileHandle,
} from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { randomUUID } from 'node:crypto';
import { type AppendFile, createAppendFile } from './append-file.js';
import type { Readable, Writable } from 'node:stream';
import type { FileInfo, FileWriter, PutOptions, StorageDriver } from './driver.js';
import { errorCode, isMissing, mkdirCause, syncDirs, syncFile } from './fs-sync.js';

// Small reads and stats are the registry's hottest I/O (links, manifests): the callback API costs a
// fraction of fs/promises' FileHandle-based readFile per call (about 2.5x fewer CPU cycles here).
function readWhole(path: string): Promise<Buffer> {
  return new Promise((res, rej) => readFileCb(path, (e, b) => (e ? rej(e) : res(b))));
}

function statOf(path: string): Promise<Stats> {
  return new Promise((res, rej) => statCb(path, (e, s) => (e ? rej(e) : res(s))));
}

const READ_CHUNK = 4 << 20;

/** What putContent appends to a target's name while writing it; only the sweep looks for it. */
const TMP_MARK = '.tmp-';
const TMP_NAME = /\.tmp-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Writes a new file whole, and flushes it before returning when it must be durable. */
async function writeWhole(path: string, data: Uint8Array, durable: boolean): Promise<void> {
  const fh = await open(path, 'wx');
  try {
    await fh.writeFile(data);
    if (durable) await fh.datasync();
  } finally {
    await fh.close();
  }
}

/**
 * Stores objects as files under a root directory, exactly as Distribution's filesystem driver does.
 *
 * Writes are durable before they are visible: a file's bytes are flushed before it is renamed into
 * place, and the directory is flushed after, so a crash never leaves a link or blob that names bytes
 * the disk does not have (Distribution syncs on commit; a rename alone can reach the disk first).
 */
export class FilesystemDriver implements StorageDriver {
  readonly name = 'filesystem';
  readonly root: string;
  readonly location: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.location = `storage.filesystem.rootdirectory: ${this.root}`;
  }

  private full(path: string): string {
    const p = resolve(this.root, path.replace(/^\/+/, ''));
    // Defence in depth: layout.ts only builds validated paths, but nothing may escape the root.
    if (p !== this.root && !p.startsWith(this.root + sep)) throw new Error(`path escapes storage root: ${path}`);
    return p;
  }

  /**
   * Creates a directory and its parents. Returns the directories that got a new entry (the parent of
   * each directory created): a durable write flushes them with its own directory, so the path survives.
   */
  private async ensureDir(dir: string): Promise<string[]> {
    let first: string | undefined;
    try {
      first = await mkdir(dir, { recursive: true });
    } catch (e) {
      throw errorCode(e) === 'ENOENT' ? await mkdirCause(dir, e) : e;
    }
    if (first === undefined) return [];
    const parents: string[] = [];
    for (let d = dir; ; d = dirname(d)) {
      parents.push(dirname(d));
      if (d === first || dirname(d) === d) break;
    }
    return parents;
  }

  /**
   * Runs `write` into `dir`, creating it first; returns the directories ensureDir changed. The sweep may
   * remove an old, empty blob folder between the two steps (a leftover of a crash that a new push happens
   * to reuse): then it is created again, once.
   */
  private async intoDir(dir: string, write: () => Promise<void>): Promise<string[]> {
    const changed = await this.ensureDir(dir);
    try {
      await write();
    } catch (e) {
      if (errorCode(e) !== 'ENOENT') throw e;
      changed.push(...(await this.ensureDir(dir)));
      await write();
    }
    return changed;
  }

  async getContent(path: string): Promise<Buffer | null> {
    try {
      return await readWhole(this.full(path));
    } catch (e) {
      if (isMissing(e) || errorCode(e) === 'EISDIR') return null;
      throw e;
    }
  }

  async putContent(path: string, data: Uint8Array, options: PutOptions = {}): Promise<void> {
    const durable = options.durable ?? true;
    const target = this.full(path);
    const dir = dirname(target);
    const changed = await this.intoDir(dir, async () => {
      const tmp = `${target}${TMP_MARK}${randomUUID()}`;
      try {
        await writeWhole(tmp, data, durable);
        await rename(tmp, target);
      } catch (e) {
        // A half-written temporary file (a full disk) must not keep the space it took.
        await unlink(tmp).catch(() => undefined);
        throw e;
      }
    });
    if (durable) await syncDirs([dir, ...changed]);
  }

  async createAppendFile(path: string): Promise<AppendFile> {
    const target = this.full(path);
    const dir = dirname(target);
    let changed: string[] = [];
    let file: AppendFile | undefined;
    changed = await this.intoDir(dir, async () => {
      file = await createAppendFile(target, () => syncDirs([dir, ...changed]));
    });
    return file!;
  }

  async stat(path: string): Promise<FileInfo | null> {
    try {
      const s = await statOf(this.full(path));
      return { size: s.size, modified: s.mtime, isDirectory: s.isDirectory() };
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
  }

  async reader(path: string, offset = 0, length?: number): Promise<Readable> {
    const full = this.full(path);
    // Open first so a missing file is an error here, not a later stream event.
    const fh = await open(full, 'r');
    // 4 MiB reads measured about 1.6x the throughput of 1 MiB ones serving a blob; memory stays bounded
    // by the number of streams, never by blob size, and small reads do not allocate more than they need.
    const opts: { start: number; end?: number; highWaterMark: number } = { start: offset, highWaterMark: READ_CHUNK };
    if (length !== undefined) {
      opts.end = offset + length - 1;
      opts.highWaterMark = Math.max(64 * 1024, Math.min(READ_CHUNK, length));
    }
    return fh.createReadStream(opts);
  }

  async sendTo(path: string, out: Writable, offset: number, length: number): Promise<void> {
    const fh = await open(this.full(path), 'r');
    try {
      await pumpFile(fh, out, offset, length);
    } finally {
      await fh.close();
    }
  }

  async writer(path: string): Promise<FileWriter> {
    const full = this.full(path);
    await syncDirs(await this.ensureDir(dirname(full)));
    let start = 0;
    try {
      start = (await stat(full)).size;
    } catch (e) {
      if (!isMissing(e)) throw e;
    }
    const stream: WriteStream = createWriteStream(full, { flags: 'a', highWaterMark: 1 << 20 });
    const closed = (): Promise<void> =>
      new Promise((res) => {
        if (stream.closed) return res();
        stream.once('close', () => res());
        stream.destroy();
      });
    return {
      stream,
      size: () => start + stream.bytesWritten,
      commit: async () => {
        await closed();
        await syncFile(full);
      },
      cancel: async () => {
        await closed();
        // Undo a partial chunk so the upload stays at the offset the client was last told.
        await truncate(full, start).catch((e) => {
          if (!isMissing(e)) throw e;
        });
      },
    };
  }

  async list(path: string): Promise<string[]> {
    try {
      return await readdir(this.full(path));
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
  }

  async move(from: string, to: string): Promise<void> {
    const source = this.full(from);
    const target = this.full(to);
    const dir = dirname(target);
    // Writers sync on commit, so this costs nothing then; it keeps the promise for bytes that came another way.
    await syncFile(source);
    const changed = await this.intoDir(dir, () => rename(source, target));
    await syncDirs([dir, ...changed]);
  }

  async delete(path: string): Promise<void> {
    await rm(this.full(path), { recursive: true, force: true });
  }

  async sweep(before: Date, removableWhenEmpty: (path: string) => boolean): Promise<string[]> {
    const removed: string[] = [];
    const old = (s: Stats) => s.mtimeMs < before.getTime();
    // One directory at a time, depth first: a background job should not crowd out requests.
    const visit = async (rel: string): Promise<void> => {
      const abs = rel ? this.full(rel) : this.root;
      let entries: Dirent[];
      let self: Stats;
      try {
        // The directory's own age is taken before anything in it is removed (which would make it new).
        self = await lstat(abs);
        entries = await readdir(abs, { withFileTypes: true });
      } catch (e) {
        if (isMissing(e)) return;
        throw e;
      }
      let left = entries.length;
      for (const entry of entries) {
        const child = rel ? `${rel}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
          await visit(child);
          if (removed.at(-1) === child) left--;
        } else if (entry.isFile() && TMP_NAME.test(entry.name)) {
          // Only old ones: a young temporary file may be a write in progress.
          const s = await lstat(this.full(child)).catch(() => null);
          if (!s || !old(s)) continue;
          await unlink(this.full(child)).catch((e) => {
            if (!isMissing(e)) throw e;
          });
          removed.push(child);
          left--;
        }
      }
      if (left === 0 && rel && old(self) && removableWhenEmpty(rel)) {
        // rmdir, never rm -r: if a write has just put something here, the directory is not empty and stays.
        try {
          await rmdir(abs);
          removed.push(rel);
        } catch (e) {
          if (!isMissing(e) && errorCode(e) !== 'ENOTEMPTY' && errorCode(e) !== 'EEXIST') throw e;
        }
      }
    };
    await visit('');
    return removed;
  }
}

/**
 * Copies a file range into a writable with two reused buffers: a buffer is read into again only after
 * the socket has taken it, so memory is two chunks per transfer and nothing waits for the garbage
 * collector, while the next read overlaps the current write.
 *
 * Two writes are in flight at once, so either may fail while the loop waits on the other (a client that
 * resets the connection): every write's outcome is caught where it is made and kept in `failure`, never
 * left as a promise nobody awaits, which would be an unhandled rejection that ends the process.
 */
async function pumpFile(fh: FileHandle, out: Writable, offset: number, length: number): Promise<void> {
  const size = Math.max(1, Math.min(READ_CHUNK, length));
  const buffers = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
  let failure: Error | undefined;
  const fail = (e: Error) => {
    failure ??= e;
  };
  let settle: () => void = () => undefined;
  const onClose = () => {
    fail(new Error('the receiver closed before the transfer ended'));
    settle();
  };
  const onError = (e: Error) => fail(e);
  // A destroyed receiver may never call back a pending write; its close settles every wait instead.
  const closed = new Promise<void>((resolve) => {
    settle = resolve;
    if (out.destroyed) onClose();
  });
  out.once('close', onClose);
  out.on('error', onError);
  // A response can emit an error a tick after a failed write, when this call's listener is gone: one shared
  // listener stays so that is never an uncaught exception, however many calls a receiver sees.
  if (!out.listeners('error').includes(ignoreLateError)) out.on('error', ignoreLateError);
  const written = (buf: Buffer): Promise<void> =>
    Promise.race([
      new Promise<void>((resolve) =>
        out.write(buf, (err) => {
          if (err) fail(err);
          resolve();
        }),
      ),
      closed,
    ]);
  const inFlight: [Promise<void>, Promise<void>] = [Promise.resolve(), Promise.resolve()];
  try {
    let pos = offset;
    const end = offset + length;
    let i = 0;
    while (pos < end) {
      await inFlight[i];
      if (failure) break;
      const buf = buffers[i]!;
      const { bytesRead } = await fh.read(buf, 0, Math.min(size, end - pos), pos);
      if (bytesRead === 0) throw new Error(`file ended ${end - pos} bytes early`);
      pos += bytesRead;
      inFlight[i] = written(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
      i ^= 1;
    }
    await Promise.all(inFlight);
    if (failure) throw failure;
  } finally {
    out.off('close', onClose);
    out.off('error', onError);
  }
}

function ignoreLateError(): void {}
