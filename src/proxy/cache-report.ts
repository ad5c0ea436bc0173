/** Who made the cache act, for the audit log and the events journal. */
export interface Requester {
  principal: string;
  address: string;
}

/** A record of a fetch from upstream or a refusal: an audit line, and an event when notifications are on. */
export interface CacheAuditRecord extends Requester {
  action: 'fetch';
  repository: string;
  reference: string;
  decision: 'allowed' | 'denied';
  reason: string;
  rule?: string;
}

/** Writes an audit line as it happens (the audit log buffers and never fails a request). */
export type CacheAudit = (record: CacheAuditRecord) => void;

/** Journals a record's event; resolves once it is durable, rejects when the journal write failed. */
export type CacheObserver = (record: CacheAuditRecord) => Promise<void>;

/**
 * Where the cache's decisions go. A fill or a refusal is caused by a request, so its event is journaled
 * before that request is answered, like a push: the cache awaits `report` before it serves the manifest or
 * throws the refusal, and every client waiting on the same fetch is answered only after it.
 */
export class CacheReports {
  audit: CacheAudit | undefined;
  observe: CacheObserver | undefined;

  /** Sends a record to the audit log and to the journal; resolves once the journal holds its event. */
  async report(record: CacheAuditRecord): Promise<void> {
    this.audit?.(record);
    await this.observe?.(record);
  }
}
