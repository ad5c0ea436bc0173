import { DOCKER_HUB } from '../oci/reference.js';
import { isRepositoryName, type RepositoryName } from '../oci/name.js';
import type { Upstream, Upstreams } from '../upstream/upstreams.js';

/** A request's repository as the cache sees it: which upstream, its name there, and where it is kept here. */
export interface CacheTarget {
  upstream: Upstream;
  /** The repository's name at the upstream (`library/nginx`). */
  remote: string;
  /** The local repository that holds what was fetched (`docker.io/library/nginx`). */
  local: RepositoryName;
  /** The full upstream name that flow rules judge (`docker.io/library/nginx`). */
  image: string;
  /** True when the name came without a registry host and was taken to mean the unprefixed upstream. */
  viaUnprefixed: boolean;
}

function make(upstream: Upstream, rest: string, viaUnprefixed: boolean): CacheTarget | undefined {
  // Docker Hub's official images live under library/ (dockerd sends it; a bare `nginx` means it too).
  const remote = upstream.name === DOCKER_HUB && !rest.includes('/') ? `library/${rest}` : rest;
  const local = `${upstream.prefix}/${remote}`;
  if (!isRepositoryName(local)) return undefined;
  return { upstream, remote, local, image: `${upstream.name}/${remote}`, viaUnprefixed };
}

/** What `cacheTarget` needs to know beyond the name. */
export interface TargetContext {
  /** `?ns=` of the request (containerd's hosts.toml mirrors). */
  ns?: string;
  /** The Host the client addressed: `ns` equal to it means this registry itself. */
  host?: string;
  /** Whether a flow rule approves an upstream name at all (any tag): such names belong to the upstream. */
  approved(image: string): boolean;
  /** Whether a local repository of the name exists (asked only for names without a registry host). */
  localExists(): Promise<boolean>;
}

/** A request names a registry this one does not mirror (`?ns=ghcr.io` without a ghcr.io upstream). */
export class NotMirrored extends Error {}

/**
 * Maps a request to the cache, or undefined for a local repository. Every client's way in lands on one
 * repository: `docker.io/library/busybox` by name, `library/busybox?ns=docker.io` (containerd's
 * hosts.toml), and `library/busybox` (dockerd's and podman's mirrors) when the unprefixed upstream
 * takes names without a host. A name without a host belongs to that upstream when a flow approves it
 * (so a local push cannot stand in for an approved image for mirror clients), or when no local
 * repository has it; otherwise it is the local repository.
 */
export async function cacheTarget(
  upstreams: Upstreams,
  name: string,
  c: TargetContext,
): Promise<CacheTarget | undefined> {
  if (c.ns && c.ns !== c.host) {
    const u = upstreams.get(c.ns);
    if (!u) throw new NotMirrored(`this registry does not mirror ${c.ns} (no upstream of that name is configured)`);
    return make(u, name.startsWith(`${u.prefix}/`) ? name.slice(u.prefix.length + 1) : name, false);
  }
  const slash = name.indexOf('/');
  if (slash > 0) {
    const u = upstreams.byPrefix(name.slice(0, slash));
    if (u) return make(u, name.slice(slash + 1), false);
  }
  const u = upstreams.unprefixed();
  if (!u || c.ns) return undefined;
  const t = make(u, name, true);
  if (!t) return undefined;
  if (c.approved(t.image) || !(await c.localExists())) return t;
  return undefined;
}

/** True when a local repository name holds an upstream's images (writes there are refused). */
export function isCacheRepository(upstreams: Upstreams, name: string): Upstream | undefined {
  const slash = name.indexOf('/');
  return slash > 0 ? upstreams.byPrefix(name.slice(0, slash)) : undefined;
}
