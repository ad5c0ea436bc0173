import { DOCKER_HUB, parseReference, type Reference } from '../oci/reference.js';

/** Parses `NAME[:TAG]` as Docker does: a missing tag means `latest`; digests are refused. */
export function parseTaggedName(text: string): Reference & { tag: string } {
  const ref = parseReference(text);
  if (ref.digest) throw new Error(`"${text}": a Docker archive or daemon names images by NAME:TAG, not by digest`);
  return { ...ref, tag: ref.tag ?? 'latest' };
}

/** Docker's short spelling: `docker.io/library/nginx:1` → `nginx:1`, `docker.io/me/x:1` → `me/x:1`. */
export function familiarName(ref: Reference & { tag: string }): string {
  let name = `${ref.registry}/${ref.repository}`;
  if (ref.registry === DOCKER_HUB) {
    name =
      ref.repository.startsWith('library/') && ref.repository.split('/').length === 2
        ? ref.repository.slice(8)
        : ref.repository;
  }
  return `${name}:${ref.tag}`;
}

/** True when the text is a `NAME:TAG` Sluice can read (a RepoTag from an archive or a daemon may be anything). */
export function isTaggedName(text: string): boolean {
  try {
    parseTaggedName(text);
    return true;
  } catch {
    return false;
  }
}

/** True when two `NAME:TAG` spellings name the same image (`nginx` = `docker.io/library/nginx:latest`). */
export function sameTaggedName(a: string, b: string): boolean {
  try {
    const x = parseTaggedName(a);
    const y = parseTaggedName(b);
    return x.registry === y.registry && x.repository === y.repository && x.tag === y.tag;
  } catch {
    return false;
  }
}
