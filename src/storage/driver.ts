import type { Readable, Writable } from 'node:stream';
import type { AppendFile } from './append-file.js';

/** What a driver knows of one stored object. */
export interface FileInfo {
  size: number;
  modified: Date;
  isDirectory: boolean;
}

/** A writer that appends to an object; `commit` makes the written bytes durable, `cancel` undoes this writer's bytes. */
export interface FileWriter {
  readonly stream: Writable;
  /** Bytes in the object once this writer's stream has finished. */
  size(): number;
  /**
   * Bytes of the object a reader can get now, for a driver that holds written bytes back (S3 sends whole
   * parts). Absent: every byte whose write has called back is readable.
   */
  readable?(): number;
  commit(): Promise<void>;
  cancel(): Promise<void>;
}

/** How a small object is written. */
export interface PutOptions {
  /**
   * False for bookkeeping a crash may lose without harm (an upload session's start: the client begins
   * again): still atomic, but without the flushes that make a write durable. Defaults to true.
   */
  durable?: boolean;
  /**
   * Write only when no object is at the path, else reject with code EEXIST and write nothing. Pass it only
   * where `exclusiveCreate()` said yes: only then does it hold against other processes.
   */
  ifAbsent?: boolean;
}

/**
 * The small storage interface under Distribution's layout. Paths are slash-separated, relative to the
 * driver's root, and built only by `layout.ts` from validated names: a driver never sees user text.
 */
export interface StorageDriver {
  readonly name: string;
  /** Where the objects live, as the config names it, for messages: `storage.filesystem.rootdirectory: /srv/registry`. */
  readonly location?: string;
  /** Reads a small object whole (links, manifests); null when absent. */
  getContent(path: string): Promise<Buffer | null>;
  /** Writes a small object whole, atomically and durably: once this resolves, a crash cannot lose or tear it. */
  putContent(path: string, data: Uint8Array, options?: PutOptions): Promise<void>;
  stat(path: string): Promise<FileInfo | null>;
  /** Streams an object from `offset` for `length` bytes (to the end when omitted). */
  reader(path: string, offset?: number, length?: number): Promise<Readable>;
  /**
   * Writes `length` bytes of an object from `offset` into `out`, where a driver can do better than a
   * stream (the filesystem reuses two buffers instead of allocating one per chunk). Optional.
   */
  sendTo?(path: string, out: Writable, offset: number, length: number): Promise<void>;
  /** Opens an object for appending (creating it when absent). */
  writer(path: string): Promise<FileWriter>;
  /** Names of the direct children of a directory; empty when absent. */
  list(path: string): Promise<string[]>;
  /** Moves an object into place, replacing what is there; the object's bytes are durable before it appears at `to`. */
  move(from: string, to: string): Promise<void>;
  /** Deletes an object or a whole directory; no error when absent. */
  delete(path: string): Promise<void>;
  /**
   * Removes what a crash left behind, when last changed before `before`: the driver's own temporary
   * objects, and empty directories for which `removableWhenEmpty` says yes. Returns the removed paths.
   * Optional: a driver whose writes leave nothing behind has nothing to sweep.
   */
  sweep?(before: Date, removableWhenEmpty: (path: string) => boolean): Promise<string[]>;
  /** True when `putContent(..., { ifAbsent: true })` is atomic across processes (S3 conditional writes). Optional: absent means no. */
  exclusiveCreate?(): Promise<boolean>;
  /** A short-lived URL from which a client can GET the object without this process, or undefined. Optional. */
  redirectURL?(path: string, expiresInSeconds: number): Promise<string | undefined>;
  /** Creates an object that grows by appends (a log), failing when one is at the path. Optional: files only. */
  createAppendFile?(path: string): Promise<AppendFile>;
  /** Aborts server-side uploads of the driver's own (S3 multipart) begun before `before`; returns their keys. Optional. */
  abortStaleUploads?(before: Date): Promise<string[]>;
}

/** True when a storage error means the storage is full (no space, or a quota reached). */
export function isStorageFull(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
