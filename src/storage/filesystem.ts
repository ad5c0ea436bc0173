import { createWriteStream, readFile as readFileCb, stat as statCb, type Stats, type WriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import type { FileInfo, FileWriter, StorageDriver } from './driver.js';

// Small reads and stats are the registry's hottest I/O (links, manifests): the callback API costs a
// fraction of fs/promises' FileHandle-based readFile per call (about 2.5x fewer CPU cycles here).
function readWhole(path: string): Promise<Buffer> {
  return new Promise((res, rej) => readFileCb(path, (e, b) => (e ? rej(e) : res(b))));
}

function statOf(path: string): Promise<Stats> {
  return new Promise((res, rej) => statCb(path, (e, s) => (e ? rej(e) : res(s))));
}

const READ_CHUNK = 4 << 20;

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Stores objects as files under a root directory, exactly as Distribution's filesystem driver does. */
export class FilesystemDriver implements StorageDriver {
  readonly name = 'filesystem';
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  private full(path: string): string {
    const p = resolve(this.root, path.replace(/^\/+/, ''));
    // Defence in depth: layout.ts only builds validated paths, but nothing may escape the root.
    if (p !== this.root && !p.startsWith(this.root + sep)) throw new Error(`path escapes storage root: ${path}`);
    return p;
  }

  async getContent(path: string): Promise<Buffer | null> {
    try {
      return await readWhole(this.full(path));
    } catch (e) {
      if (isMissing(e) || (e as NodeJS.ErrnoException).code === 'EISDIR') return null;
      throw e;
    }
  }

  async putContent(path: string, data: Uint8Array): Promise<void> {
    const target = this.full(path);
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.tmp-${randomUUID()}`;
    await writeFile(tmp, data);
    await rename(tmp, target);
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
    await mkdir(dirname(full), { recursive: true });
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
      commit: closed,
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
    const target = this.full(to);
    await mkdir(dirname(target), { recursive: true });
    await rename(this.full(from), target);
  }

  async delete(path: string): Promise<void> {
    await rm(this.full(path), { recursive: true, force: true });
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
  const onClose = () => fail(new Error('the receiver closed before the transfer ended'));
  const onError = (e: Error) => fail(e);
  // A destroyed receiver may never call back a pending write; its close settles every wait instead.
  const closed = new Promise<void>((resolve) => {
    if (out.destroyed) {
      onClose();
      resolve();
    } else out.once('close', resolve);
  });
  out.once('close', onClose);
  out.on('error', onError);
  const written = (buf: Buffer): Promise<void> =>
    Promise.race([new Promise<void>((resolve) => out.write(buf, (err) => (err ? fail(err) : undefined, resolve()))), closed]);
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
    // The error listener stays: a response can emit an error a tick after a failed write, and with no
    // listener left that would be an uncaught exception.
  }
}
