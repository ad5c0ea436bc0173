import { request } from './undici-core.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TransportOptions } from './options.js';
import { Connection, DEFAULT_TOKEN_SECONDS } from './registry-pool.js';
import {
  errorFrom,
  header,
  isConnectionError,
  parseChallenge,
  readJson,
  RETRY_STATUSES,
  retryAfterMs,
  type ClientRequest,
  type ClientResponse,
} from './registry-http.js';

// The client's vocabulary and the pool live in their own modules; importers keep importing them from here.
export * from './registry-http.js';
export { RegistryPool, type ConnectionSettings } from './registry-pool.js';

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
    if (ch?.scheme !== 'bearer') return undefined;
    const realm = ch.params.realm;
    if (!realm) throw new Error(`${this.host}: Bearer challenge without realm`);
    const url = new URL(realm);
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    const cred = this.conn.credentials;
    if (cred) headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`;
    const res = await this.withRetries(
      () => request(url, { method: 'GET', headers, dispatcher: this.conn.dispatcher }),
      true,
    );
    if (res.statusCode !== 200)
      throw await errorFrom(res, `token from ${url.origin}${url.pathname} for ${scopes.join(' ')}`);
    const doc = await readJson<{ token?: string; access_token?: string; expires_in?: number }>(
      res,
      `${this.host}: token answer`,
      'token',
    );
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
      return this.withRetries(
        () =>
          request(url, {
            method: req.method,
            headers,
            body: req.body,
            dispatcher: this.conn.dispatcher,
            ...(req.method === 'HEAD' ? { reset: false } : {}),
          }),
        replayable,
      );
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
