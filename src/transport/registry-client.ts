import { Agent, interceptors, request, type Dispatcher } from './undici-core.js';
import type { Readable } from 'node:stream';
import { readDeclared, type ReadLimit } from './bounded.js';
import { findCredentials, type Credentials } from './credentials.js';
import type { TransportOptions } from './options.js';
import { setTimeout as sleep } from 'node:timers/promises';

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

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses a WWW-Authenticate header (`Bearer realm="…",service="…",scope="…"`). */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2]!.matchAll(/([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) params[p[1]!.toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
  return { scheme: m[1]!.toLowerCase(), params };
}

const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CLOSED', 'UND_ERR_HEADERS_TIMEOUT']);

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
    if (e?.code) return new RegistryError(`${what}: ${e.code}: ${e.message ?? ''}`.trim(), res.statusCode, e.code, e.detail);
  } catch {
    // not the OCI error format
  }
  return new RegistryError(`${what}: HTTP ${res.statusCode}${text ? ` ${text.slice(0, 200).trim()}` : ''}`, res.statusCode);
}

/** Tokens one connection keeps: a token is per repository, and a cache's pool meets every repository it serves. */
const MAX_TOKENS = 512;
/** The Docker token spec's lifetime for a token whose answer names none. */
const DEFAULT_TOKEN_SECONDS = 60;
/** A token is renewed this long before it expires (a quarter of its lifetime for short-lived ones). */
const RENEW_BEFORE_MS = 10_000;

/**
 * What every client of one registry can share: the undici Agent (kept-alive connections), the scheme
 * and auth challenge found by one `GET /v2/`, credentials and the tokens fetched per scope set.
 */
class Connection {
  base?: string;
  readonly dispatcher: Dispatcher;
  credentials?: Credentials | null;
  challenge?: Challenge;
  private readonly tokens = new Map<string, { token: string; renewAt: number }>();
  private pinging?: Promise<void>;

  /**
   * Keeps a token for a scope set until shortly before it expires; a long-lived pool (a cache's upstream)
   * keeps only the newest few hundred. Renewing early means a request never goes out with a token that
   * expires on the way, which a streamed body could not recover from by asking again.
   */
  keepToken(scopes: string, token: string, expiresInSeconds = DEFAULT_TOKEN_SECONDS): void {
    const lifetime = expiresInSeconds * 1000;
    this.tokens.delete(scopes);
    this.tokens.set(scopes, { token, renewAt: Date.now() + lifetime - Math.min(RENEW_BEFORE_MS, lifetime / 4) });
    if (this.tokens.size > MAX_TOKENS) this.tokens.delete(this.tokens.keys().next().value!);
  }

  /** The token for a scope set while it is still good to use; undefined when there is none or it is about to expire. */
  token(scopes: string): string | undefined {
    const t = this.tokens.get(scopes);
    if (t && Date.now() < t.renewAt) return t.token;
    if (t) this.tokens.delete(scopes);
    return undefined;
  }

  constructor(
    readonly host: string,
    private readonly opts: TransportOptions,
  ) {
    const timeout = opts.timeoutMs ?? 300_000;
    const agent = new Agent({
      connect: { rejectUnauthorized: opts.tlsVerify !== false, timeout, ...(opts.ca ? { ca: opts.ca } : {}) },
      keepAliveTimeout: 10_000,
      bodyTimeout: 300_000,
      headersTimeout: timeout,
    });
    this.dispatcher = agent.compose(interceptors.redirect({ maxRedirections: 5 }));
  }

  /** Finds the scheme and the auth challenge once; concurrent first requests wait for the same ping. */
  ping(retry: (send: () => Promise<ClientResponse>) => Promise<ClientResponse>): Promise<void> {
    if (this.base) return Promise.resolve();
    // A failed ping is forgotten, so the next request asks again (the registry may be back).
    this.pinging ??= this.findBase(retry).finally(() => (this.pinging = undefined));
    return this.pinging;
  }

  private async findBase(retry: (send: () => Promise<ClientResponse>) => Promise<ClientResponse>): Promise<void> {
    if (this.credentials === undefined) this.credentials = (await findCredentials(this.host, this.opts)) ?? null;
    const candidates = this.opts.baseUrl
      ? [this.opts.baseUrl.replace(/\/+$/, '')]
      : isLoopbackHost(this.host)
      ? [`http://${this.host}`]
      : this.opts.tlsVerify === false
        ? [`https://${this.host}`, `http://${this.host}`]
        : [`https://${this.host}`];
    let lastError: unknown;
    for (const base of candidates) {
      try {
        const res = await retry(() => request(`${base}/v2/`, { method: 'GET', dispatcher: this.dispatcher }));
        await res.body.dump();
        if (res.statusCode === 401) this.challenge = parseChallenge(header(res, 'www-authenticate'));
        else if (res.statusCode >= 400 && res.statusCode !== 404) throw new RegistryError(`${this.host}: ping answered HTTP ${res.statusCode}`, res.statusCode);
        this.base = base;
        return;
      } catch (e) {
        lastError = e;
      }
    }
    // A registry that answered (429, 503) keeps its status, so callers can tell "busy" from "unreachable".
    if (lastError instanceof RegistryError) throw new RegistryError(`cannot use registry ${this.host}: ${lastError.message}`, lastError.status, lastError.code);
    throw new Error(`cannot reach registry ${this.host}: ${describe(lastError)}`);
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}

/**
 * Registry connections shared for a run (a mirror job's every image, source and destination): one
 * Agent, one ping and one token cache per registry and settings, instead of one per image. Clients
 * made with it leave closing to the pool.
 */
export class RegistryPool {
  private readonly connections = new Map<string, Connection>();

  /** The shared connection for a registry host reached with these settings. */
  connection(host: string, opts: TransportOptions): Connection {
    const key = JSON.stringify([host, opts.baseUrl, opts.tlsVerify, opts.ca, opts.timeoutMs, opts.creds, opts.authFile, opts.searchDefaultAuthFiles]);
    let c = this.connections.get(key);
    if (!c) {
      c = new Connection(host, opts);
      this.connections.set(key, c);
    }
    return c;
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    const all = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(all.map((c) => c.close().catch(() => undefined)));
  }
}

/**
 * One registry, as a client sees it: picks http or https, answers auth challenges (Bearer tokens,
 * anonymous or with credentials, and Basic), and retries what a retry can cure. With `opts.pool`
 * it shares its connections, ping and tokens with the pool's other clients of the same registry.
 */
export class RegistryClient {
  private readonly conn: Connection;
  private readonly pooled: boolean;
  private readonly retries: number;

  constructor(
    readonly host: string,
    private readonly scopes: string[],
    opts: TransportOptions = {},
  ) {
    this.retries = opts.retryTimes ?? 3;
    this.pooled = opts.pool !== undefined;
    this.conn = opts.pool?.connection(host, opts) ?? new Connection(host, opts);
  }

  private ping(): Promise<void> {
    return this.conn.ping((send) => this.withRetries(send, true));
  }

  /** Runs `send`, retrying connection errors and retryable statuses with exponential backoff. */
  private async withRetries(send: () => Promise<ClientResponse>, replayable: boolean): Promise<ClientResponse> {
    for (let attempt = 0; ; attempt++) {
      const canRetry = replayable && attempt < this.retries;
      let res: ClientResponse;
      try {
        res = await send();
      } catch (e) {
        if (canRetry && isConnectionError(e)) {
          await sleep(backoff(attempt));
          continue;
        }
        throw e;
      }
      if (canRetry && RETRY_STATUSES.has(res.statusCode)) {
        const wait = retryAfterMs(res.headers['retry-after']) ?? backoff(attempt);
        await res.body.dump();
        await sleep(wait);
        continue;
      }
      return res;
    }
  }

  private authHeader(scopes: string[]): string | undefined {
    const { challenge, credentials } = this.conn;
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') {
      if (!credentials) return undefined;
      return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
    }
    const token = this.conn.token(scopeKey(scopes));
    return token ? `Bearer ${token}` : undefined;
  }

  /** Fetches a Bearer token for the scopes from the challenge's realm (with Basic credentials when there are some). */
  private async fetchToken(scopes: string[]): Promise<{ token: string; seconds: number } | undefined> {
    const ch = this.conn.challenge;
    if (!ch || ch.scheme !== 'bearer') return undefined;
    const realm = ch.params.realm;
    if (!realm) throw new Error(`${this.host}: Bearer challenge without realm`);
    const url = new URL(realm);
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    const cred = this.conn.credentials;
    if (cred) headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`;
    const res = await this.withRetries(() => request(url, { method: 'GET', headers, dispatcher: this.conn.dispatcher }), true);
    if (res.statusCode !== 200) throw await errorFrom(res, `token from ${url.origin}${url.pathname} for ${scopes.join(' ')}`);
    const doc = await readJson<{ token?: string; access_token?: string; expires_in?: number }>(res, `${this.host}: token answer`, 'token');
    const token = doc.token ?? doc.access_token;
    if (!token) throw new Error(`${this.host}: token response carries no token`);
    const lifetime = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : DEFAULT_TOKEN_SECONDS;
    this.conn.keepToken(scopeKey(scopes), token, lifetime);
    return { token, seconds: lifetime };
  }

  /** Sends a request with auth; a streamed body is sent once (retries are the caller's business). */
  async send(req: ClientRequest): Promise<ClientResponse> {
    await this.ping();
    const scopes = [...this.scopes, ...(req.scopes ?? [])];
    const replayable = req.body === undefined || Buffer.isBuffer(req.body);
    if (this.conn.challenge?.scheme === 'bearer' && !this.conn.token(scopeKey(scopes))) await this.fetchToken(scopes);
    const url = /^https?:\/\//.test(req.path) ? req.path : `${this.conn.base}${req.path}`;
    const attempt = () => {
      const headers = { ...(req.headers ?? {}) };
      const auth = this.authHeader(scopes);
      if (auth) headers.authorization = auth;
      // undici closes the connection after a HEAD unless told otherwise; registries send no body to a HEAD.
      return this.withRetries(() => request(url, { method: req.method, headers, body: req.body, dispatcher: this.conn.dispatcher, ...(req.method === 'HEAD' ? { reset: false } : {}) }), replayable);
    };
    let res = await attempt();
    if (res.statusCode === 401 && replayable) {
      // The token may have expired or lack a scope this request needs: ask again once.
      const ch = parseChallenge(header(res, 'www-authenticate'));
      await res.body.dump();
      if (ch) this.conn.challenge = ch;
      const extra = ch?.params.scope ? ch.params.scope.split(' ') : [];
      const all = [...new Set([...scopes, ...extra])];
      const got = await this.fetchToken(all);
      if (got && all.length !== scopes.length) this.conn.keepToken(scopeKey(scopes), got.token, got.seconds);
      res = await attempt();
    }
    return res;
  }

  /** Resolves a Location header against the registry's base URL. */
  resolve(location: string): string {
    return new URL(location, `${this.conn.base}/`).toString();
  }

  /** Closes the client's connections, unless a pool owns them. */
  async close(): Promise<void> {
    if (!this.pooled) await this.conn.close();
  }
}

function scopeKey(scopes: string[]): string {
  return [...new Set(scopes)].sort().join(' ');
}

function backoff(attempt: number): number {
  return Math.min(500 * 2 ** attempt, 10_000);
}

/** One header's value as a string. */
export function header(res: ClientResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function describe(e: unknown): string {
  if (!e) return 'unknown error';
  const err = e as Error & { code?: string; reason?: string; cause?: Error & { code?: string } };
  const code = err.code ?? err.cause?.code;
  // OpenSSL's message is a source path and a line break; its reason alone is the readable part.
  if (code?.startsWith('ERR_SSL') && err.reason) {
    const hint = code === 'ERR_SSL_WRONG_VERSION_NUMBER' ? '; it may speak plain HTTP, which --tls-verify=false allows' : '';
    return `TLS failed: ${err.reason} (${code})${hint}`;
  }
  const message = err.message.replace(/\s*\n\s*/g, ' ').trim();
  return `${message}${code && !message.includes(code) ? ` (${code})` : ''}`;
}
