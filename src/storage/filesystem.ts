import { createWriteStream, readFile as readFileCb, stat as statCb, type Stats, type WriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { FileInfo, FileWriter, StorageDriver } from './driver.js';

// Small reads and stats are the registry's hottest I/O (links, manifests): the callback API costs a
// fraction of fs/promises' FileHandle-based readFile per call (about 2.5x fewer CPU cycles here).
function readWhole(path: string): Promise<Buffer> {
  return new Promise((res, rej) => readFileCb(path, (e, b) => (e ? rej(e) : res(b))));
}

function statOf(path: string): Promise<Stats> {
  return new Promise((res, rej) => statCb(path, (e, s) => (e ? rej(e) : res(s))));
}

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
    const opts: { start: number; end?: number; highWaterMark: number } = { start: offset, highWaterMark: 1 << 20 };
    if (length !== undefined) opts.end = offset + length - 1;
    return fh.createReadStream(opts);
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

