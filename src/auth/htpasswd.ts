import { createHash } from 'node:crypto';
import { BcryptPool } from './bcrypt-pool.js';
import { fileError } from './file-errors.js';
import { FileWatch } from './file-watch.js';

// Clients that send Basic auth on every request would otherwise pay a full bcrypt (tens of ms of CPU) each
// time. Only successes are remembered, keyed by a hash that includes the stored bcrypt hash, so a changed
// password or a removed user is never served from here; failures always cost the full check.
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 10_000;

/** Counts bcrypt comparisons, so tests can see that unknown users cost the same work as known ones. */
export const bcryptStats = { compares: 0 };

/** The bcrypt cost of a hash (`$2y$12$...` → 12). */
function costOf(hash: string): number {
  return Number(hash.slice(4, 6));
}

/**
 * A syntactically valid bcrypt hash of the given cost that no password matches: comparing with it does the
 * full work of that cost (the salt is read, the password hashed, the result compared) without the cost of
 * making a real hash when the file is read.
 */
function dummyHash(cost: number): string {
  return `$2b$${String(cost).padStart(2, '0')}$${'sluiceNoSuchUserSaltXe'}${'sluiceNoSuchUserHashValueXXXXXX'}`;
}

/** Users read from an htpasswd file (bcrypt entries only, as Distribution reads them); re-read when it changes. */
export class HtpasswdStore {
  private users = new Map<string, string>();
  private readonly file: FileWatch;
  private dummy = dummyHash(10);
  private readonly verified = new Map<string, number>();
  private readonly pool: BcryptPool;
  /** Lines that were skipped, with the reason (never the hash). */
  warnings: string[] = [];

  /** Reads the file now: a missing or unreadable file is an error naming `auth.htpasswd.path`. */
  constructor(
    readonly path: string,
    pool?: BcryptPool,
  ) {
    this.pool = pool ?? new BcryptPool();
    this.file = new FileWatch(path);
    try {
      this.reload();
    } catch (e) {
      throw fileError('auth.htpasswd.path', path, e);
    }
  }

  private reload(): void {
    const text = this.file.readIfChanged();
    if (text === undefined) return;
    const users = new Map<string, string>();
    const warnings: string[] = [];
    let cost = 0;
    text.split(/\r?\n/).forEach((line, i) => {
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
      cost = Math.max(cost, costOf(hash));
    });
    this.users = users;
    this.warnings = warnings;
    // Unknown users are checked against a hash of the highest cost in the file, so a name that is not there
    // never answers faster than one that is.
    this.dummy = dummyHash(cost || 10);
  }

  /** True when the file holds this user. */
  has(name: string): boolean {
    this.refresh();
    return this.users.has(name);
  }

  /**
   * A fingerprint of the user's stored credential, undefined when there is no such user. It changes with every
   * change of the password, and with a deleted and re-created user (a new hash has a new salt), so tokens
   * bound to it stop working then.
   */
  credential(name: string): string | undefined {
    this.refresh();
    const hash = this.users.get(name);
    return hash === undefined ? undefined : createHash('sha256').update(`htpasswd\0${name}\0${hash}`).digest('hex');
  }

  private refresh(): void {
    try {
      this.reload();
    } catch {
      // Keep the last good copy when the file is briefly missing (being replaced).
    }
  }

  /** Checks a user's password; unknown users do the same bcrypt work as known ones. Throws PoolBusyError when swamped. */
  async verify(name: string, password: string): Promise<boolean> {
    this.refresh();
    const hash = this.users.get(name);
    const key =
      hash === undefined ? undefined : createHash('sha256').update(`${name}\0${password}\0${hash}`).digest('hex');
    const until = key === undefined ? undefined : this.verified.get(key);
    if (until !== undefined && until > Date.now()) return true;
    bcryptStats.compares++;
    // $2a$, $2b$ and Apache's $2y$ are the same algorithm; bcryptjs knows the first two.
    const ok = await this.pool.compare(password, (hash ?? this.dummy).replace(/^\$2y\$/, '$2b$'));
    if (hash === undefined || !ok) return false;
    if (this.verified.size >= VERIFIED_MAX) this.verified.clear();
    this.verified.set(key!, Date.now() + VERIFIED_TTL_MS);
    return true;
  }

  /** Stops the password-checking workers. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
