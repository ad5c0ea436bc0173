import { limiter } from '../copy/limit.js';
import { MediaType } from '../oci/mediatypes.js';
import { RegistryClient, RegistryError, isConnectionError } from '../transport/registry-client.js';
import type { Upstreams } from '../upstream/upstreams.js';
import type { Publicness, PublicQuery } from './decide.js';

const ACCEPT = [MediaType.OciIndex, MediaType.DockerManifestList, MediaType.OciManifest, MediaType.DockerManifest, MediaType.DockerSchema1Signed, MediaType.DockerSchema1].join(', ');

/**
 * Answers "may anyone pull this?" the only way that proves it: as an anonymous client, through the
 * registry's own token flow, a HEAD of the manifest by digest. Registries are reached through
 * `upstreams` (their URL and TLS settings, never their credentials). Answers are kept for the run, and
 * a registry that cannot be reached is asked once.
 */
export class PublicnessChecker {
  private readonly answers = new Map<string, Promise<Publicness>>();
  private readonly unreachable = new Map<string, string>();
  private readonly clients = new Map<string, RegistryClient>();
  private readonly limit = limiter(8);
  /** Registry requests made (HEADs), for tests and the summary. */
  requests = 0;

  constructor(private readonly upstreams: Upstreams) {}

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

  private async ask(q: PublicQuery): Promise<Publicness> {
    const down = this.unreachable.get(q.registry);
    if (down) return { public: false, reason: down };
    const name = `${q.registry}/${q.repository}`;
    const refusals: string[] = [];
    for (const digest of q.digests) {
      try {
        this.requests++;
        const res = await this.client(q.registry, q.repository).send({ method: 'HEAD', path: `/v2/${q.repository}/manifests/${digest}`, headers: { accept: ACCEPT } });
        await res.body.dump();
        if (res.statusCode === 200) return { public: true, reason: `anonymous HEAD of ${name}@${digest} answered 200` };
        refusals.push(`anonymous HEAD answered ${res.statusCode}${res.statusCode === 404 ? ' (the registry does not have that digest)' : ''}`);
      } catch (e) {
        if (e instanceof RegistryError) {
          // The token endpoint refusing an anonymous client is the same answer as the HEAD refusing it.
          refusals.push(`anonymous ${/^token /.test(e.message) ? 'token request' : 'request'} answered ${e.status}`);
          continue;
        }
        const reason = `registry ${q.registry} could not be reached (${(e as Error).message}), so ${name} is not proven public`;
        if (isConnectionError(e) || /cannot reach registry/.test((e as Error).message)) this.unreachable.set(q.registry, reason);
        return { public: false, reason };
      }
    }
    return { public: false, reason: `${[...new Set(refusals)].join('; ')} for ${name}` };
  }

  /** Closes every registry connection. */
  async close(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((c) => c.close().catch(() => undefined)));
  }
}
