import { isAbsolute, resolve } from 'node:path';

/**
 * Config keys that name files or folders (`*`: every item of a list). A relative one written in a
 * config file is relative to that file's folder, so a command run from anywhere finds the same files.
 */
export const PATH_KEYS: readonly string[] = [
  'storage.filesystem.rootdirectory',
  'auth.htpasswd.path',
  'auth.robots.path',
  'auth.issuer.key',
  'auth.token.rootcertbundle',
  'auth.token.jwks',
  'audit.path',
  'http.tls.certificate',
  'http.tls.key',
  'http.tls.clientcas.*',
  'upstreams.*.passwordfile',
  'upstreams.*.authfile',
  'upstreams.*.cafile',
  'trust.keys.*',
  'trust.roots.*',
  'trust.trustStores.*',
];

/** Values of path keys that are not files: the audit log's stdout, a JWKS fetched over HTTP. */
function notAFile(key: string, value: string): boolean {
  if (key === 'audit.path') return value === '-' || value === 'stdout';
  if (key === 'auth.token.jwks') return /^https?:\/\//i.test(value);
  return false;
}

function expand(obj: unknown, segments: string[], prefix: string[], out: string[][]): void {
  if (segments.length === 0) {
    out.push(prefix);
    return;
  }
  if (typeof obj !== 'object' || obj === null) return;
  const [head, ...rest] = segments as [string, ...string[]];
  const keys = head === '*' ? Object.keys(obj) : Object.hasOwn(obj, head) ? [head] : [];
  for (const k of keys) expand((obj as Record<string, unknown>)[k], rest, [...prefix, k], out);
}

function valueAt(obj: unknown, path: string[]): unknown {
  let cur = obj;
  for (const k of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

function setAt(obj: unknown, path: string[], value: unknown): void {
  const parent = valueAt(obj, path.slice(0, -1)) as Record<string, unknown>;
  parent[path[path.length - 1]!] = value;
}

/**
 * Makes the relative paths that came from the config file absolute against `baseDir`. `written` is the
 * input as read (so schema defaults are left alone); `fromElsewhere` tells which keys were set by an
 * environment variable or a flag, which stay relative to the current directory.
 */
export function resolveConfigPaths(
  config: object,
  written: unknown,
  baseDir: string,
  fromElsewhere: (path: string) => boolean,
): void {
  for (const key of PATH_KEYS) {
    const found: string[][] = [];
    expand(config, key.split('.'), [], found);
    for (const path of found) {
      const value = valueAt(config, path);
      if (typeof value !== 'string' || valueAt(written, path) !== value) continue;
      if (isAbsolute(value) || notAFile(key, value) || fromElsewhere(path.join('.'))) continue;
      setAt(config, path, resolve(baseDir, value));
    }
  }
}
