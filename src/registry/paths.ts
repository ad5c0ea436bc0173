import { OciError } from '../oci/errors.js';
import { isRepositoryName, type RepositoryName } from '../oci/name.js';

/** The distribution API endpoints, as matched from a `/v2/...` path. */
export type Endpoint =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: RepositoryName }
  | { kind: 'manifest'; name: RepositoryName; reference: string }
  | { kind: 'blob'; name: RepositoryName; digest: string }
  | { kind: 'uploads'; name: RepositoryName }
  | { kind: 'upload'; name: RepositoryName; id: string }
  | { kind: 'referrers'; name: RepositoryName; digest: string };

const PATTERNS: [RegExp, (m: RegExpExecArray, name: RepositoryName) => Endpoint][] = [
  [/^(.+)\/blobs\/uploads\/?$/, (_m, name) => ({ kind: 'uploads', name })],
  [/^(.+)\/blobs\/uploads\/([^/]+)$/, (m, name) => ({ kind: 'upload', name, id: m[2]! })],
  [/^(.+)\/blobs\/([^/]+)$/, (m, name) => ({ kind: 'blob', name, digest: m[2]! })],
  [/^(.+)\/manifests\/([^/]+)$/, (m, name) => ({ kind: 'manifest', name, reference: m[2]! })],
  [/^(.+)\/tags\/list$/, (_m, name) => ({ kind: 'tags', name })],
  [/^(.+)\/referrers\/([^/]+)$/, (m, name) => ({ kind: 'referrers', name, digest: m[2]! })],
];

/** Matches the path after `/v2/`; null for no endpoint; NAME_INVALID for a bad repository name. */
export function matchEndpoint(rest: string): Endpoint | null {
  if (rest === '') return { kind: 'base' };
  if (rest === '_catalog') return { kind: 'catalog' };
  for (const [re, make] of PATTERNS) {
    const m = re.exec(rest);
    if (!m) continue;
    const name = m[1]!;
    if (!isRepositoryName(name)) throw new OciError('NAME_INVALID', `invalid repository name "${name.slice(0, 300)}"`);
    return make(m, name);
  }
  return null;
}
