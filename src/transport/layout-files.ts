import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * The files of an OCI image layout, wherever they live: a directory, a bucket prefix, a static web server.
 * Paths are relative to the layout and '/'-separated (`index.json`, `blobs/sha256/<hex>`).
 */
export interface LayoutFiles {
  /** The layout's place as messages name it (a directory, `s3:bucket/prefix`, a URL). */
  readonly where: string;
  /** A small file whole; undefined when absent. */
  read(path: string): Promise<Buffer | undefined>;
  /** A file's size in bytes; undefined when absent. */
  size(path: string): Promise<number | undefined>;
  /** Streams a file; fails (before the first byte) when it is absent. */
  stream(path: string): Promise<Readable>;
  close?(): Promise<void>;
}

/** Layout files that can also be written. */
export interface WritableLayoutFiles extends LayoutFiles {
  /** Writes a small file whole; readers see the old or the new content, never part of it. */
  write(path: string, bytes: Uint8Array): Promise<void>;
  /** Writes a file from a stream that must hold exactly `size` bytes; the file appears only once complete. */
  writeStream(path: string, body: Readable, size: number): Promise<void>;
}

function tmpName(path: string): string {
  return `${path}.tmp-${randomBytes(6).toString('hex')}`;
}

/** An OCI layout in a local directory. */
export class DirectoryFiles implements WritableLayoutFiles {
  constructor(readonly where: string) {}

  private path(p: string): string {
    return join(this.where, ...p.split('/'));
  }

  async read(p: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.path(p));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async size(p: string): Promise<number | undefined> {
    const st = await stat(this.path(p)).catch(() => null);
    return st?.isFile() ? st.size : undefined;
  }

  async stream(p: string): Promise<Readable> {
    const full = this.path(p);
    // Checked first, so a missing file fails here rather than mid-stream.
    await stat(full);
    return createReadStream(full, { highWaterMark: 1024 * 1024 });
  }

  async write(p: string, bytes: Uint8Array): Promise<void> {
    const full = this.path(p);
    await mkdir(dirname(full), { recursive: true });
    const tmp = tmpName(full);
    try {
      await writeFile(tmp, bytes);
      await rename(tmp, full);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  async writeStream(p: string, body: Readable, size: number): Promise<void> {
    const full = this.path(p);
    await mkdir(dirname(full), { recursive: true });
    // Written under a temporary name and renamed once complete: a failed copy never leaves a wrong blob.
    const tmp = tmpName(full);
    try {
      await pipeline(body, createWriteStream(tmp));
      const st = await stat(tmp);
      if (st.size !== size) throw new Error(`got ${st.size} bytes, expected ${size}`);
      await rename(tmp, full);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }
}
