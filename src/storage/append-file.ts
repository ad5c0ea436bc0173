import { open, type FileHandle } from 'node:fs/promises';

/**
 * A file open for appending, for a log written in small batches (the event journal's active segment): one
 * write per batch instead of a new file, which on this kind of filesystem costs ten times more than the write.
 */
export interface AppendFile {
  /** Appends bytes; with `durable`, they (and the file's name) are on disk before this resolves. */
  append(data: Uint8Array, durable: boolean): Promise<void>;
  /** Cuts the file back to `size` bytes: what a failed append wrote in part must not precede the next line. */
  truncate(size: number): Promise<void>;
  close(): Promise<void>;
}

/** Creates `path` (it must not exist) for appending; `syncName` makes its directory entry durable, once. */
export async function createAppendFile(path: string, syncName: () => Promise<void>): Promise<AppendFile> {
  const fh: FileHandle = await open(path, 'wx');
  let named = false;
  return {
    async append(data, durable) {
      let at = 0;
      while (at < data.length) at += (await fh.write(data, at, data.length - at)).bytesWritten;
      if (!durable) return;
      await fh.datasync();
      if (!named) {
        await syncName();
        named = true;
      }
    },
    truncate: (size) => fh.truncate(size),
    close: () => fh.close(),
  };
}
