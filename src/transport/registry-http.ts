// The registry client's HTTP vocabulary: its errors, answers, challenges, retries and bounded body reads.
// Nothing here holds a connection, so the pool and the client both build on it.
import type { Dispatcher } from './undici-core.js';
import type { Readable } from 'node:stream';
import { readDeclared, type ReadLimit } from './bounded.js';

/** An error answered by a registry, with the OCI error code when the body carried one. */
export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code?: string,
    readonly detail?: unknown,
  ) {
    super(message);
  }
}

type Body = Buffer | Readable | undefined;

/** A request to the registry; paths are relative to the registry root (`/v2/...`) or absolute URLs. */
export interface ClientRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  headers?: Record<string, string>;
  body?: Body;
  /** Extra token scopes this request needs besides the client's own (a mount's source repository). */
  scopes?: string[];
}

/** A response: status, headers and a body that must be read or dumped. */
export type ClientResponse = Dispatcher.ResponseData;

/** True for hosts Docker talks to over plain HTTP without being told: localhost and 127.0.0.0/8. */
export function isLoopbackHost(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

/** The host clients connect to for a registry name (Docker Hub's API lives elsewhere). */
export function apiHost(registry: string): string {
  return registry === 'docker.io' ? 'registry-1.docker.io' : registry;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses a WWW-Authenticate header (`Bearer realm="…",service="…",scope="…"`). */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2]!.matchAll(/([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g))
    params[p[1]!.toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
  return { scheme: m[1]!.toLowerCase(), params };
}

/** Statuses a retry can cure. */
export const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_HEADERS_TIMEOUT',
]);

/** True for an error that a retry may cure (the connection broke, not the request). */
export function isConnectionError(e: unknown): boolean {
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur; i++) {
    const code = (cur as { code?: string }).code;
    if (code && CONNECTION_ERRORS.has(code)) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}

/** Milliseconds a Retry-After header asks for (seconds or an HTTP date), capped at a minute. */
export function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  if (!v) return undefined;
  const secs = Number(v);
  const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(v) - Date.now();
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(ms, 0), 60_000);
}

/**
 * The most Sluice reads whole of each kind of answer from outside (a blob is streamed, never read whole).
 * Manifests: 4 MiB, as Distribution and containerd; one page of a tag list or catalog and a referrers
 * index: 4 MiB (a thousand entries take a few dozen KiB); a token answer: 1 MiB (a JWT is a few KiB);
 * an error body: 64 KiB (only its first message is shown).
 */
export const BODY_LIMITS = {
  manifest: 4 << 20,
  tags: 4 << 20,
  catalog: 4 << 20,
  referrers: 4 << 20,
  token: 1 << 20,
  error: 64 << 10,
} as const;

/** A kind of answer read whole, each with its bound in `BODY_LIMITS`. */
export type BodyKind = keyof typeof BODY_LIMITS;

/**
 * Reads an answer from outside whole, within the bound of its kind (or the caller's, when smaller):
 * refused by its Content-Length before a byte is read, and cut (the connection destroyed) as soon as
 * more than the bound arrived. Every body Sluice reads whole from a registry or web server comes here.
 */
export async function readBody(res: ClientResponse, what: string, kind: BodyKind, limit?: ReadLimit): Promise<Buffer> {
  const bound = { maxBytes: Math.min(BODY_LIMITS[kind], limit?.maxBytes ?? Infinity) };
  return readDeclared(res.body, header(res, 'content-length'), what, bound);
}

/** Reads a bounded answer (see `readBody`) and parses it as JSON; a body that is not JSON says so. */
export async function readJson<T>(res: ClientResponse, what: string, kind: BodyKind): Promise<T> {
  const bytes = await readBody(res, what, kind);
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (e) {
    throw new Error(`${what}: the answer is not JSON: ${(e as Error).message}`, { cause: e });
  }
}

/** Reads an error body and turns it into a RegistryError that names the OCI code. */
export async function errorFrom(res: ClientResponse, what: string): Promise<RegistryError> {
  let text = '';
  try {
    text = (await readBody(res, `${what}: error body`, 'error')).toString('utf8');
  } catch {
    // Unreadable or over the bound: the status alone still says what happened.
    text = '';
  }
  try {
    const doc = JSON.parse(text) as { errors?: { code?: string; message?: string; detail?: unknown }[] };
    const e = doc.errors?.[0];
    if (e?.code)
      return new RegistryError(`${what}: ${e.code}: ${e.message ?? ''}`.trim(), res.statusCode, e.code, e.detail);
  } catch {
    // not the OCI error format
  }
  return new RegistryError(
    `${what}: HTTP ${res.statusCode}${text ? ` ${text.slice(0, 200).trim()}` : ''}`,
    res.statusCode,
  );
}

/** One header's value as a string. */
export function header(res: ClientResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** An error from a request in words a user can act on (TLS reasons, connection codes). */
export function describe(e: unknown): string {
  if (!e) return 'unknown error';
  const err = e as Error & { code?: string; reason?: string; cause?: Error & { code?: string } };
  const code = err.code ?? err.cause?.code;
  // OpenSSL's message is a source path and a line break; its reason alone is the readable part.
  if (code?.startsWith('ERR_SSL') && err.reason) {
    const hint =
      code === 'ERR_SSL_WRONG_VERSION_NUMBER' ? '; it may speak plain HTTP, which --tls-verify=false allows' : '';
    return `TLS failed: ${err.reason} (${code})${hint}`;
  }
  const message = err.message.replace(/\s*\n\s*/g, ' ').trim();
  return `${message}${code && !message.includes(code) ? ` (${code})` : ''}`;
}
