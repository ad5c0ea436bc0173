import { createWriteStream, type WriteStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { fileError } from './file-errors.js';

/** One audit record: who did (or was refused) what, where, and which rule decided. */
export interface AuditRecord {
  time: string;
  principal: string;
  address: string;
  action: string;
  repository?: string;
  reference?: string;
  decision: 'allowed' | 'denied';
  rule?: string;
  reason?: string;
  method?: string;
  status?: number;
}

/** A JSON-lines audit log on a file (appended) or stdout. Records carry no credentials. */
export class AuditLog {
  private readonly stream: WriteStream | NodeJS.WritableStream;
  private readonly own: boolean;
  private closing: Promise<void> | undefined;

  private constructor(path: string, fd?: FileHandle) {
    this.own = fd !== undefined;
    this.stream = fd !== undefined ? createWriteStream(path, { fd, flags: 'a' }) : process.stdout;
    // A write that fails later (disk full) must not crash the registry: it becomes a process warning on stderr.
    (this.stream as NodeJS.EventEmitter).on('error', (e: Error) =>
      process.emitWarning(`audit.path: ${path}: ${e.message}`),
    );
  }

  /** Opens the log now, so a missing folder or a directory stops the start with an error naming `audit.path`. */
  static async open(path: string): Promise<AuditLog> {
    if (path === '-' || path === 'stdout') return new AuditLog(path);
    try {
      const handle = await open(path, 'a', 0o640);
      return new AuditLog(path, handle);
    } catch (e) {
      throw fileError('audit.path', path, e);
    }
  }

  /** Appends one record. */
  write(r: Omit<AuditRecord, 'time'>): void {
    this.stream.write(JSON.stringify({ time: new Date().toISOString(), ...r }) + '\n');
  }

  /** Flushes and closes the file (once, however often it is called). */
  close(): Promise<void> {
    if (!this.own) return Promise.resolve();
    this.closing ??= new Promise<void>((res) => (this.stream as WriteStream).end(res));
    return this.closing;
  }
}
