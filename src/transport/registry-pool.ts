// Connections to registries, shared by every client of a run: one Agent, ping and token cache per registry.
import { Agent, interceptors, request, type Dispatcher } from './undici-core.js';
import { findCredentials, type Credentials } from './credentials.js';
import {
  describe,
  header,
  isLoopbackHost,
  parseChallenge,
  RegistryError,
  type Challenge,
  type ClientResponse,
} from './registry-http.js';

/** The settings that make two connections to one registry different (the pool's key). */
export interface ConnectionSettings {
  creds?: string;
  authFile?: string;
  tlsVerify?: boolean;
  baseUrl?: string;
  timeoutMs?: number;
  searchDefaultAuthFiles?: boolean;
  ca?: string;
}

/** Tokens one connection keeps: a token is per repository, and a cache's pool meets every repository it serves. */
const MAX_TOKENS = 512;
/** The Docker token spec's lifetime for a token whose answer names none. */
export const DEFAULT_TOKEN_SECONDS = 60;
/** A token is renewed this long before it expires (a quarter of its lifetime for short-lived ones). */
const RENEW_BEFORE_MS = 10_000;

/**
 * What every client of one registry can share: the undici Agent (kept-alive connections), the scheme
 * and auth challenge found by one `GET /v2/`, credentials and the tokens fetched per scope set.
 */
export class Connection {
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
    private readonly opts: ConnectionSettings,
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
        else if (res.statusCode >= 400 && res.statusCode !== 404)
          throw new RegistryError(`${this.host}: ping answered HTTP ${res.statusCode}`, res.statusCode);
        this.base = base;
        return;
      } catch (e) {
        lastError = e;
      }
    }
    // A registry that answered (429, 503) keeps its status, so callers can tell "busy" from "unreachable".
    if (lastError instanceof RegistryError)
      throw new RegistryError(
        `cannot use registry ${this.host}: ${lastError.message}`,
        lastError.status,
        lastError.code,
      );
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
  connection(host: string, opts: ConnectionSettings): Connection {
    const key = JSON.stringify([
      host,
      opts.baseUrl,
      opts.tlsVerify,
      opts.ca,
      opts.timeoutMs,
      opts.creds,
      opts.authFile,
      opts.searchDefaultAuthFiles,
    ]);
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
