import { createHash } from 'node:crypto';
import { readFileSync, statSync, type Stats } from 'node:fs';

// A file written within this long of our last read may have changed without its stat changing (same clock
// tick, same size, written in place): while it is that fresh its content is compared too, as git does for
// "racily clean" index entries.
const RACY_MS = 2_000;

function sameStat(a: Stats | undefined, b: Stats): boolean {
  return a !== undefined && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.size === b.size && a.ino === b.ino;
}

/**
 * Notices changes to a small file that is checked on every request (htpasswd, robots): a stat when nothing
 * changed, a read only when the stat differs or the file is too fresh for its stat to be trusted.
 */
export class FileWatch {
  private stat: Stats | undefined;
  private readAt = 0;
  private digest = '';

  constructor(readonly path: string) {}

  /** The file's text when it changed since the last call (or on the first), undefined when it did not; fs errors are thrown. */
  readIfChanged(): string | undefined {
    const st = statSync(this.path);
    if (sameStat(this.stat, st) && st.mtimeMs < this.readAt - RACY_MS) return undefined;
    const readAt = Date.now();
    const text = readFileSync(this.path, 'utf8');
    const digest = createHash('sha256').update(text).digest('hex');
    this.stat = st;
    this.readAt = readAt;
    if (digest === this.digest) return undefined;
    this.digest = digest;
    return text;
  }

  /** Forgets what was read, so the next call returns the text again (after the file went missing). */
  reset(): void {
    this.stat = undefined;
    this.digest = '';
  }
}
