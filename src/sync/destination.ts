import picomatch from 'picomatch';
import { parseReference } from '../oci/reference.js';
import type { MirrorConfig } from './config.js';

/** What a destination name needs of an upstream: its host name and local prefix. */
export interface UpstreamNaming {
  name: string;
  prefix: string;
}

/** Where a mirror job puts an upstream repository: a local repository name, or the rest of a `to` reference. Pure. */
export function destinationName(m: MirrorConfig, upstream: UpstreamNaming, repository: string): string {
  const prefix = m.prefix ?? upstream.prefix;
  const style = m.destname ?? 'path';
  let rest = repository;
  if (style === 'base') rest = repository.slice(repository.lastIndexOf('/') + 1);
  else if (style === 'scoped') rest = `${upstream.name}/${repository}`;
  return prefix ? `${prefix.replace(/\/+$/, '')}/${rest}` : rest;
}

const GLOB = /[*?[{]/;

/**
 * A test for the local repositories a mirror job writes (jobs with `to:` write elsewhere): the job's image entries
 * named as the job names their destinations, globs kept as globs. `naming` gives an upstream's host and prefix.
 */
export function mirrorDestinations(m: MirrorConfig, naming: (host: string) => UpstreamNaming): (r: string) => boolean {
  if (m.to) return () => false;
  const tests = m.images.map((entry) => {
    if (!GLOB.test(entry)) {
      const ref = parseReference(entry);
      const name = destinationName(m, naming(ref.registry), ref.repository);
      return (r: string) => r === name;
    }
    const host = entry.split('/')[0]!;
    const upstream = naming(parseReference(`${host}/placeholder`).registry);
    return picomatch(destinationName(m, upstream, entry.slice(host.length + 1)));
  });
  return (r) => tests.some((t) => t(r));
}
