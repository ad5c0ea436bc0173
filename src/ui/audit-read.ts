import { open } from 'node:fs/promises';
import type { AuditRecord } from '../auth/audit.js';

/** How much of the end of the audit log one request reads: older records are not searched (see docs/api.md). */
export const AUDIT_TAIL_BYTES = 32 * 1024 * 1024;

/** What an audit search asks for; every field is optional and all given ones must hold. */
export interface AuditFilter {
  /** The principal exactly as the log writes it: `alice`, `robot:builder`, `anonymous`. */
  user?: string;
  action?: string;
  /** Lower-case text the repository must contain. */
  repository?: string;
  decision?: 'allowed' | 'denied';
  /** Inclusive bounds, in milliseconds since the epoch. */
  since?: number;
  until?: number;
}

/** The records of the log's last AUDIT_TAIL_BYTES, newest first, and whether older ones were left out. */
export async function readAuditTail(path: string): Promise<{ records: AuditRecord[]; truncated: boolean }> {
  const file = await open(path, 'r');
  try {
    const size = (await file.stat()).size;
    const start = Math.max(0, size - AUDIT_TAIL_BYTES);
    const buf = Buffer.alloc(size - start);
    let read = 0;
    while (read < buf.length) {
      const { bytesRead } = await file.read(buf, read, buf.length - read, start + read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    const lines = buf.subarray(0, read).toString('utf8').split('\n');
    // Reading from the middle of the file: the first line is a piece of one.
    if (start > 0) lines.shift();
    const records: AuditRecord[] = [];
    for (let i = lines.length - 1; i >= 0; i--) {
      const r = parseRecord(lines[i]!);
      if (r) records.push(r);
    }
    return { records, truncated: start > 0 };
  } finally {
    await file.close();
  }
}

/** One line as a record, or undefined for a line that is not one (a half-written last line, a foreign line). */
function parseRecord(line: string): AuditRecord | undefined {
  if (!line.startsWith('{')) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  const r = v as Record<string, unknown>;
  if (typeof r['time'] !== 'string' || typeof r['principal'] !== 'string' || typeof r['action'] !== 'string')
    return undefined;
  if (r['decision'] !== 'allowed' && r['decision'] !== 'denied') return undefined;
  const text = (k: string) => (typeof r[k] === 'string' ? { [k]: r[k] as string } : {});
  return {
    time: r['time'],
    principal: r['principal'],
    address: typeof r['address'] === 'string' ? r['address'] : '',
    action: r['action'],
    decision: r['decision'],
    ...text('repository'),
    ...text('reference'),
    ...text('rule'),
    ...text('reason'),
    ...text('method'),
    ...(typeof r['status'] === 'number' ? { status: r['status'] } : {}),
  };
}

/** Whether a record passes a filter. */
export function matchesAudit(r: AuditRecord, f: AuditFilter): boolean {
  if (f.user !== undefined && r.principal !== f.user) return false;
  if (f.action !== undefined && r.action !== f.action) return false;
  if (f.decision !== undefined && r.decision !== f.decision) return false;
  if (f.repository !== undefined && !(r.repository ?? '').toLowerCase().includes(f.repository)) return false;
  if (f.since !== undefined || f.until !== undefined) {
    const t = Date.parse(r.time);
    if (Number.isNaN(t)) return false;
    if (f.since !== undefined && t < f.since) return false;
    if (f.until !== undefined && t > f.until) return false;
  }
  return true;
}
