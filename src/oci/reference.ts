import { isDigest, type Digest } from './digest.js';
import { isTag, MAX_NAME_LENGTH, quoteName } from './name.js';

/** Docker Hub's canonical registry host. */
export const DOCKER_HUB = 'docker.io';

/** An image reference: registry, repository and a tag and/or digest. */
export interface Reference {
  registry: string;
  repository: string;
  tag?: string;
  digest?: Digest;
}

/** Thrown for text that is not an image reference. */
export class InvalidReferenceError extends Error {
  override readonly name = 'InvalidReferenceError';
}

const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
// Docker's domain grammar: DNS labels, an IPv6 address in brackets, an optional port; never `..` or empty.
const LABEL = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
const HOST = new RegExp(`^(?:${LABEL}(?:\\.${LABEL})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]{1,5})?$`);

function looksLikeRegistry(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase();
}

/** Parses `[registry/]repo[:tag][@digest]` and normalizes Docker Hub names (`nginx` → `docker.io/library/nginx`). */
export function parseReference(text: string, defaultRegistry: string = DOCKER_HUB): Reference {
  let rest = text;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) throw new InvalidReferenceError(`invalid digest in reference ${quoteName(text)}`);
    digest = d;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isTag(tag)) throw new InvalidReferenceError(`invalid tag ${quoteName(tag)} in reference ${quoteName(text)}`);
  }
  const parts = rest.split('/');
  let registry = defaultRegistry;
  if (parts.length > 1 && looksLikeRegistry(parts[0]!)) {
    registry = parts.shift()!;
    if (!HOST.test(registry))
      throw new InvalidReferenceError(`invalid registry host ${quoteName(registry)} in reference ${quoteName(text)}`);
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  if (parts.length === 0 || parts.some((p) => !COMPONENT.test(p)) || parts.join('/').length > MAX_NAME_LENGTH) {
    throw new InvalidReferenceError(`invalid repository name in reference ${quoteName(text)}`);
  }
  const ref: Reference = { registry, repository: parts.join('/') };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** Formats a reference in its full, normalized spelling. */
export function formatReference(ref: Reference): string {
  let s = `${ref.registry}/${ref.repository}`;
  if (ref.tag) s += `:${ref.tag}`;
  if (ref.digest) s += `@${ref.digest}`;
  return s;
}

/** The usual spellings of a reference's name, from shortest to full: `nginx`, `library/nginx`, `docker.io/library/nginx`. */
export function nameSpellings(ref: Pick<Reference, 'registry' | 'repository'>): string[] {
  const full = `${ref.registry}/${ref.repository}`;
  if (ref.registry !== DOCKER_HUB) return [ref.repository, full];
  const out = [ref.repository, full];
  if (ref.repository.startsWith('library/')) out.unshift(ref.repository.slice('library/'.length));
  return out;
}
