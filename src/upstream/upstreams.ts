import { readFileSync } from 'node:fs';
import { parseDuration } from '../config/duration.js';
import { limiter } from '../async/limit.js';
import { DOCKER_HUB } from '../oci/reference.js';
import { isLoopbackHost, RegistryClient, RegistryPool } from '../transport/registry-client.js';
import type { MinRate } from '../transport/min-rate.js';
import type { TransportOptions } from '../transport/options.js';
import { RegistrySource } from '../transport/docker.js';
import type { ImageSource } from '../transport/transport.js';
import type { Digest } from '../oci/digest.js';
import { upstreamSchema, type ProxyConfig, type UpstreamConfig } from './config.js';

/** One upstream registry: where it is reached, how, and a registry client per repository. */
export interface Upstream {
  /** The registry host images are named with (`docker.io`, `ghcr.io`, `host:port`). */
  name: string;
  /** Where it is reached (`https://registry-1.docker.io`). */
  url: string;
  /** First segment of local repository names that hold its images. */
  prefix: string;
  /** Whether names without a registry host (dockerd's registry-mirrors) mean this upstream. */
  unprefixed: boolean;
  ttlMs: number;
  negativeTtlMs: number;
  timeoutMs: number;
  /** The slowest a blob download from it may go before it is given up. */
  minRate: MinRate;
  /** A client for one of its repositories (pull scope), reused across requests. */
  client(repository: string): RegistryClient;
  /** Runs a request within the upstream's concurrency limit. */
  limit<T>(task: () => Promise<T>): Promise<T>;
  /** How transports reach it (base URL, credentials, TLS, timeouts), for the copy engine's registry source. */
  readonly options: TransportOptions;
  /** An image of one of its repositories as a transport source (signature checks read through it), on the shared pool. */
  source(repository: string, digest: Digest): ImageSource;
}

const MAX_CLIENTS = 64;

function defaultUrl(host: string): string {
  if (host === DOCKER_HUB) return 'https://registry-1.docker.io';
  // As Docker does: loopback registries speak plain HTTP unless told otherwise.
  return isLoopbackHost(host) ? `http://${host}` : `https://${host}`;
}

/** The local prefix for an upstream host: repository names cannot hold `:`, so `host:5000` becomes `host_5000`. */
export function localPrefix(host: string): string {
  return host.toLowerCase().replace(/:/g, '_');
}

function credentialsOf(c: UpstreamConfig): Pick<TransportOptions, 'creds' | 'authFile' | 'searchDefaultAuthFiles'> {
  // A server never borrows the credentials of whoever runs it: only what the upstream's config names.
  if (c.username !== undefined) {
    const password = c.passwordfile ? readFileSync(c.passwordfile, 'utf8').replace(/\r?\n$/, '') : (c.password ?? '');
    return { creds: `${c.username}:${password}`, searchDefaultAuthFiles: false };
  }
  // An authfile is read by the client, keyed by the upstream's name (its entry for docker.io, not for the URL's host).
  if (c.authfile) return { authFile: c.authfile, searchDefaultAuthFiles: false };
  return { searchDefaultAuthFiles: false };
}

class ConfiguredUpstream implements Upstream {
  readonly url: string;
  readonly prefix: string;
  readonly unprefixed: boolean;
  readonly ttlMs: number;
  readonly negativeTtlMs: number;
  readonly timeoutMs: number;
  readonly minRate: MinRate;
  readonly limit: <T>(task: () => Promise<T>) => Promise<T>;
  private readonly clients = new Map<string, RegistryClient>();
  /** Every repository's client shares one connection pool, ping and token cache: a new image costs no new connection or ping. */
  private readonly pool = new RegistryPool();
  readonly options: TransportOptions;

  constructor(
    readonly name: string,
    c: UpstreamConfig,
  ) {
    this.url = (c.url ?? defaultUrl(name)).replace(/\/+$/, '');
    this.prefix = c.prefix ?? localPrefix(name);
    this.unprefixed = c.unprefixed ?? name === DOCKER_HUB;
    this.ttlMs = parseDuration(c.ttl);
    this.negativeTtlMs = parseDuration(c.negativettl);
    this.timeoutMs = parseDuration(c.timeout);
    this.minRate = { bytesPerSecond: c.minrate, windowMs: parseDuration(c.ratewindow) };
    this.limit = limiter(c.concurrency);
    this.options = {
      ...credentialsOf(c),
      baseUrl: this.url,
      tlsVerify: c.tlsverify,
      timeoutMs: this.timeoutMs,
      minRate: this.minRate,
      // A cache answers its client from what it has when upstream fails: one quick retry, not a long backoff.
      retryTimes: 1,
    };
    if (c.cafile) this.options.ca = readFileSync(c.cafile, 'utf8');
  }

  client(repository: string): RegistryClient {
    let c = this.clients.get(repository);
    if (c) {
      this.clients.delete(repository);
      this.clients.set(repository, c);
      return c;
    }
    // The client is named by the upstream's name so that an authfile entry for `docker.io` is found.
    c = new RegistryClient(this.name, [`repository:${repository}:pull`], { ...this.options, pool: this.pool });
    this.clients.set(repository, c);
    if (this.clients.size > MAX_CLIENTS) {
      const oldest = this.clients.keys().next().value!;
      // Its connections belong to the pool: dropping the client is all it takes.
      this.clients.delete(oldest);
    }
    return c;
  }

  source(repository: string, digest: Digest): ImageSource {
    return new RegistrySource({ registry: this.name, repository, digest }, { ...this.options, pool: this.pool });
  }

  async close(): Promise<void> {
    this.clients.clear();
    await this.pool.close();
  }
}

/** The named upstream registries of a config (`upstreams:`, or Distribution's `proxy:` as one upstream). */
export class Upstreams {
  private readonly byName = new Map<string, ConfiguredUpstream>();
  private readonly defaults = new Map<string, ConfiguredUpstream>();

  constructor(upstreams: Record<string, UpstreamConfig> = {}, proxy?: ProxyConfig) {
    for (const [name, c] of Object.entries(upstreams))
      this.byName.set(name.toLowerCase(), new ConfiguredUpstream(name.toLowerCase(), c));
    if (proxy) {
      const host = new URL(proxy.remoteurl).host;
      const name = host === 'registry-1.docker.io' || host === 'index.docker.io' ? DOCKER_HUB : host;
      if (!this.byName.has(name)) {
        this.byName.set(
          name,
          new ConfiguredUpstream(
            name,
            // Distribution's proxy serves every name from its one upstream.
            upstreamSchema.parse({
              url: proxy.remoteurl,
              username: proxy.username,
              password: proxy.password,
              ttl: proxy.ttl,
              unprefixed: true,
            }),
          ),
        );
      }
    }
  }

  /** True when no upstream is configured. */
  get empty(): boolean {
    return this.byName.size === 0;
  }

  /** The upstream for a registry host, if configured. */
  get(host: string): Upstream | undefined {
    return this.byName.get(host.toLowerCase());
  }

  /**
   * The upstream for a registry host: the configured one, or one with default settings (https, no
   * credentials) for a host the config does not name (mirror jobs may name any registry).
   */
  orDefault(host: string): Upstream {
    const name = host.toLowerCase();
    let u = this.byName.get(name) ?? this.defaults.get(name);
    if (!u) {
      u = new ConfiguredUpstream(name, upstreamSchema.parse({ timeout: '30s' }));
      this.defaults.set(name, u);
    }
    return u;
  }

  /** The upstream whose local prefix is `first` (a repository name's first segment). */
  byPrefix(first: string): Upstream | undefined {
    for (const u of this.byName.values()) if (u.prefix === first) return u;
    return undefined;
  }

  /** The upstream that names without a registry host stand for, if any. */
  unprefixed(): Upstream | undefined {
    for (const u of this.byName.values()) if (u.unprefixed) return u;
    return undefined;
  }

  /** Every configured upstream. */
  all(): Upstream[] {
    return [...this.byName.values()];
  }

  /** Closes every client's connections. */
  async close(): Promise<void> {
    await Promise.all([...this.byName.values(), ...this.defaults.values()].map((u) => u.close()));
  }
}
