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

/**
 * Maps a request to the cache, or undefined for a local repository. Every client's way in lands on one
 * repository: `docker.io/library/busybox` by name, `library/busybox?ns=docker.io` (containerd's
 * hosts.toml), and `library/busybox` (dockerd's and podman's mirrors) when `unprefixed` allows it and
 * no local repository of that name exists (`localExists` is asked only then).
 */
export async function cacheTarget(
  upstreams: Upstreams,
  name: string,
  ns: string | undefined,
  localExists: () => Promise<boolean>,
): Promise<CacheTarget | undefined> {
  if (ns) {
    const u = upstreams.get(ns);
    if (u) return make(u, name.startsWith(`${u.prefix}/`) ? name.slice(u.prefix.length + 1) : name, false);
  }
  const slash = name.indexOf('/');
  if (slash > 0) {
    const u = upstreams.byPrefix(name.slice(0, slash));
    if (u) return make(u, name.slice(slash + 1), false);
  }
  const u = upstreams.unprefixed();
  if (u && !(await localExists())) return make(u, name, true);
  return undefined;
}

/** True when a local repository name holds an upstream's images (writes there are refused). */
export function isCacheRepository(upstreams: Upstreams, name: string): Upstream | undefined {
  const slash = name.indexOf('/');
  return slash > 0 ? upstreams.byPrefix(name.slice(0, slash)) : undefined;
}
