/**
 * Counts failed logins per key (a client address, a user name) in fixed windows, so password guessing is
 * answered with 429 and Retry-After instead of bcrypt work. Successes do not reset a count: a guesser who
 * owns one valid account must not be able to clear its address's record by logging in between guesses.
 */
export class FailureLimiter {
  private readonly entries = new Map<string, { count: number; until: number }>();

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly maxKeys = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds to wait when the key has used up its failures in the current window; undefined when it may try. */
  retryAfter(key: string): number | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    const left = e.until - this.now();
    if (left <= 0) {
      this.entries.delete(key);
      return undefined;
    }
    return e.count >= this.limit ? Math.max(1, Math.ceil(left / 1000)) : undefined;
  }

  /** Records one failure. */
  fail(key: string): void {
    const now = this.now();
    let e = this.entries.get(key);
    if (!e || e.until <= now) {
      if (!e) this.makeRoom(now);
      e = { count: 0, until: now + this.windowMs };
      this.entries.set(key, e);
    }
    e.count++;
  }

  // Bounded memory whatever the number of addresses or names: drop expired entries, then the oldest.
  private makeRoom(now: number): void {
    if (this.entries.size < this.maxKeys) return;
    for (const [k, e] of this.entries) if (e.until <= now) this.entries.delete(k);
    for (const k of this.entries.keys()) {
      if (this.entries.size < this.maxKeys) break;
      this.entries.delete(k);
    }
  }
}
