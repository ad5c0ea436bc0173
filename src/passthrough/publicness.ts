import { limiter } from '../async/limit.js';
import { MediaType } from '../oci/mediatypes.js';
import { RegistryClient, RegistryError, isConnectionError } from '../transport/registry-client.js';
import type { Upstreams } from '../upstream/upstreams.js';
import type { Publicness, PublicQuery } from './decide.js';

const ACCEPT = [
  MediaType.OciIndex,
  MediaType.DockerManifestList,
  MediaType.OciManifest,
  MediaType.DockerManifest,
  MediaType.DockerSchema1Signed,
  MediaType.DockerSchema1,
].join(', ');

/** How long one question may take by default (ping, token, HEADs and their retries together). */
export const DEFAULT_DEADLINE_MS = 60_000;

/** Options of a PublicnessChecker. */
export interface PublicnessOptions {
  /** Milliseconds one question may take before its answer is "not proven public"; default 60 s. */
  deadlineMs?: number;
}

/**
 * Answers "may anyone pull this?" the only way that proves it: as an anonymous client, through the
 * registry's own token flow, a HEAD of the manifest by digest. Registries are reached through
 * `upstreams` (their URL and TLS settings, never their credentials). Answers are kept for the run, and
 * a registry that cannot be reached, or does not answer in time, is asked once.
 */
export class PublicnessChecker {
  private readonly answers = new Map<string, Promise<Publicness>>();
  private readonly unreachable = new Map<string, string>();
  private readonly clients = new Map<string, RegistryClient>();
  private readonly limit = limiter(8);
  /** Registry requests made (HEADs), for tests and the summary. */
  requests = 0;

  private readonly deadlineMs: number;
  /** Clients with a question that ran past its deadline: closing them would wait for the registry. */
  private readonly overdue = new Set<RegistryClient>();

  constructor(
    private readonly upstreams: Upstreams,
    options: PublicnessOptions = {},
  ) {
    this.deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  }

  /** Whether an anonymous client may pull one of the query's digests; cached per registry, repository and digest. */
  check(q: PublicQuery): Promise<Publicness> {
    const key = `${q.registry}/${q.repository}@${q.digests.join(',')}`;
    let p = this.answers.get(key);
    if (!p) {
      p = this.limit(() => this.ask(q));
      this.answers.set(key, p);
    }
    return p;
  }

  private client(registry: string, repository: string): RegistryClient {
    const key = `${registry}/${repository}`;
    let c = this.clients.get(key);
    if (!c) {
      const u = this.upstreams.orDefault(registry);
      // Anonymous on purpose: whatever credentials the upstream has would prove nothing about the public.
      c = new RegistryClient(u.name, [`repository:${repository}:pull`], {
        ...u.options,
        creds: undefined,
        authFile: undefined,
        searchDefaultAuthFiles: false,
        retryTimes: 1,
      });
      this.clients.set(key, c);
    }
    return c;
  }

  /**
   * Asks with a deadline: a registry that accepts the connection and then answers slowly (a token answer
   * dripping a byte at a time) must not hold the run, and a timeout per request does not bound that.
   */
  private async ask(q: PublicQuery): Promise<Publicness> {
    const unproven = (cause: string): Publicness => ({
      public: false,
      reason: `${cause}, so ${q.registry}/${q.repository} is not proven public`,
    });
    const down = this.unreachable.get(q.registry);
    if (down) return unproven(down);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<Publicness>((resolve) => {
      timer = setTimeout(() => {
        const cause = `registry ${q.registry} did not answer within ${this.deadlineMs / 1000} s`;
        this.unreachable.set(q.registry, cause);
        this.overdue.add(this.client(q.registry, q.repository));
        resolve(unproven(cause));
      }, this.deadlineMs);
    });
    try {
      return await Promise.race([this.askRegistry(q), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async askRegistry(q: PublicQuery): Promise<Publicness> {
    const name = `${q.registry}/${q.repository}`;
    const refusals: string[] = [];
    for (const digest of q.digests) {
      try {
        this.requests++;
        const res = await this.client(q.registry, q.repository).send({
          method: 'HEAD',
          path: `/v2/${q.repository}/manifests/${digest}`,
          headers: { accept: ACCEPT },
        });
        await res.body.dump();
        if (res.statusCode === 200) return { public: true, reason: `anonymous HEAD of ${name}@${digest} answered 200` };
        refusals.push(
          `anonymous HEAD answered ${res.statusCode}${res.statusCode === 404 ? ' (the registry does not have that digest)' : ''}`,
        );
      } catch (e) {
        if (e instanceof RegistryError) {
          // The token endpoint refusing an anonymous client is the same answer as the HEAD refusing it.
          refusals.push(`anonymous ${/^token /.test(e.message) ? 'token request' : 'request'} answered ${e.status}`);
          continue;
        }
        const cause = `registry ${q.registry} could not be reached (${(e as Error).message})`;
        if (isConnectionError(e) || /cannot reach registry/.test((e as Error).message))
          this.unreachable.set(q.registry, cause);
        return { public: false, reason: `${cause}, so ${name} is not proven public` };
      }
    }
    return { public: false, reason: `${[...new Set(refusals)].join('; ')} for ${name}` };
  }

  /** Closes every registry connection; one still busy past its deadline is closed without waiting for it. */
  async close(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    const closing = all.map((c) => c.close().catch(() => undefined));
    await Promise.all(closing.filter((_, i) => !this.overdue.has(all[i]!)));
  }
}
