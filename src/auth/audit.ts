import { createWriteStream, type WriteStream } from 'node:fs';

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

  constructor(path: string) {
    this.own = !(path === '-' || path === 'stdout');
    this.stream = this.own ? createWriteStream(path, { flags: 'a', mode: 0o640 }) : process.stdout;
  }

  /** Appends one record. */
  write(r: Omit<AuditRecord, 'time'>): void {
    this.stream.write(JSON.stringify({ time: new Date().toISOString(), ...r }) + '\n');
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    if (!this.own) return;
    await new Promise<void>((res) => (this.stream as WriteStream).end(res));
  }
}
