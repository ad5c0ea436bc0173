import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** A username and password for a registry. */
export interface Credentials {
  username: string;
  password: string;
}

/** Parses `USER[:PASSWORD]` as given to `--src-creds`/`--dest-creds`. */
export function parseCreds(text: string): Credentials {
  const i = text.indexOf(':');
  if (i < 0) return { username: text, password: '' };
  return { username: text.slice(0, i), password: text.slice(i + 1) };
}

/** The host part of an `auths` key (`https://index.docker.io/v1/` → `index.docker.io`). */
function authKeyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '');
}

const DOCKER_HUB_KEYS = ['docker.io', 'index.docker.io', 'registry-1.docker.io'];

/** Finds the entry for `host` in a Docker-config `auths` map. */
export function credentialsFromAuths(
  auths: Record<string, { auth?: string; username?: string; password?: string }>,
  host: string,
): Credentials | undefined {
  const wanted = DOCKER_HUB_KEYS.includes(host) ? DOCKER_HUB_KEYS : [host];
  for (const [key, entry] of Object.entries(auths)) {
    if (!wanted.includes(authKeyHost(key))) continue;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      return parseCreds(decoded);
    }
    if (entry.username !== undefined) return { username: entry.username, password: entry.password ?? '' };
  }
  return undefined;
}

async function readAuths(
  file: string,
  required: boolean,
): Promise<Record<string, { auth?: string; username?: string; password?: string }> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (!required && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read auth file ${file}: ${(e as Error).message}`);
  }
  try {
    const doc = JSON.parse(text) as { auths?: Record<string, { auth?: string }> };
    return doc.auths ?? {};
  } catch (e) {
    throw new Error(`auth file ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** The files searched for credentials when no `--authfile` is given, in the order podman and docker use. */
export function defaultAuthFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  if (env.REGISTRY_AUTH_FILE) out.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) out.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  out.push(join(env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json'));
  return out;
}

/** Credentials for `host`: explicit `creds` first, then the auth file, then the default places. */
export async function findCredentials(
  host: string,
  opts: { creds?: string; authFile?: string; searchDefaultAuthFiles?: boolean },
): Promise<Credentials | undefined> {
  if (opts.creds) return parseCreds(opts.creds);
  const files = opts.authFile ? [opts.authFile] : opts.searchDefaultAuthFiles === false ? [] : defaultAuthFiles();
  for (const f of files) {
    const auths = await readAuths(f, f === opts.authFile);
    const c = auths && credentialsFromAuths(auths, host);
    if (c) return c;
  }
  return undefined;
}
