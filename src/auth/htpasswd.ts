import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import bcrypt from 'bcryptjs';

// Clients that send Basic auth on every request would otherwise pay a full bcrypt (tens of ms of CPU) each
// time. Only successes are remembered, keyed by a hash that includes the stored bcrypt hash, so a changed
// password or a removed user is never served from here; failures always cost the full check.
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 10_000;

/** Counts bcrypt comparisons, so tests can see that unknown users cost the same work as known ones. */
export const bcryptStats = { compares: 0 };

/** Compares a password with a bcrypt hash ($2a$, $2b$ and Apache's $2y$ are the same algorithm). */
export async function bcryptCompare(password: string, hash: string): Promise<boolean> {
  bcryptStats.compares++;
  return bcrypt.compare(password, hash.replace(/^\$2y\$/, '$2b$'));
}

/** Users read from an htpasswd file (bcrypt entries only, as Distribution reads them); re-read when it changes. */
export class HtpasswdStore {
  private users = new Map<string, string>();
  private mtime = -1;
  private dummy = '';
  private readonly verified = new Map<string, number>();
  /** Lines that were skipped, with the reason (never the hash). */
  warnings: string[] = [];

  constructor(readonly path: string) {
    this.reload();
  }

  private reload(): void {
    const st = statSync(this.path);
    if (st.mtimeMs === this.mtime) return;
    this.mtime = st.mtimeMs;
    const users = new Map<string, string>();
    const warnings: string[] = [];
    let cost = 10;
    readFileSync(this.path, 'utf8')
      .split(/\r?\n/)
      .forEach((line, i) => {
        const t = line.trim();
        if (!t || t.startsWith('#')) return;
        const c = t.indexOf(':');
        const name = t.slice(0, c);
        const hash = t.slice(c + 1);
        if (c <= 0 || !/^\$2[aby]\$\d\d\$/.test(hash)) {
          warnings.push(`${this.path}:${i + 1}: not a bcrypt entry; only bcrypt (htpasswd -B) is supported`);
          return;
        }
        users.set(name, hash);
        cost = Number(hash.slice(4, 6));
      });
    this.users = users;
    this.warnings = warnings;
    // Unknown users are checked against this hash so they take the same time as known ones.
    this.dummy = bcrypt.hashSync('sluice-no-such-user', cost);
  }

  /** True when the file holds this user. */
  has(name: string): boolean {
    this.refresh();
    return this.users.has(name);
  }

  private refresh(): void {
    try {
      this.reload();
    } catch {
      // Keep the last good copy when the file is briefly missing (being replaced).
    }
  }

  /** Checks a user's password; unknown users do the same bcrypt work as known ones. */
  async verify(name: string, password: string): Promise<boolean> {
    this.refresh();
    const hash = this.users.get(name);
    const key = hash === undefined ? undefined : createHash('sha256').update(`${name}\0${password}\0${hash}`).digest('hex');
    const until = key === undefined ? undefined : this.verified.get(key);
    if (until !== undefined && until > Date.now()) return true;
    const ok = await bcryptCompare(password, hash ?? this.dummy);
    if (hash === undefined || !ok) return false;
    if (this.verified.size >= VERIFIED_MAX) this.verified.clear();
    this.verified.set(key!, Date.now() + VERIFIED_TTL_MS);
    return true;
  }
}
