import semver from 'semver';
import { compileTagFilter } from '../policy/flows.js';
import type { MirrorConfig } from './config.js';

/**
 * The version a tag names: `1.2.3`, `v1.2`, `1` and `1.25-alpine` (the suffix counts as a pre-release, as
 * semver has it, so ranges leave it out unless they name pre-releases); `latest` or `sha256-…` name none.
 */
export function versionOf(tag: string): semver.SemVer | null {
  if (!/^v?\d+(\.\d+){0,2}([-+][0-9A-Za-z.-]+)?$/.test(tag)) return null;
  return semver.parse(semver.clean(tag, { loose: true }) ?? '') ?? semver.coerce(tag, { includePrerelease: true });
}

/**
 * Picks the tags a job mirrors from the upstream's list: include/exclude globs or regexes, then a
 * semver range, then the `latest` N by version order (highest first). Pure: no I/O.
 */
export function selectTags(all: string[], spec: MirrorConfig['tags']): string[] {
  if (!spec) return [...all].sort();
  const filter = compileTagFilter(spec.include, spec.exclude);
  let tags = all.filter(filter);
  if (spec.semver !== undefined || spec.latest !== undefined) {
    const versioned = tags.map((t) => ({ t, v: versionOf(t) })).filter((x): x is { t: string; v: semver.SemVer } => x.v !== null);
    let kept = versioned;
    if (spec.semver !== undefined) kept = kept.filter((x) => semver.satisfies(x.v, spec.semver!, { includePrerelease: false, loose: true }));
    kept.sort((a, b) => semver.rcompare(a.v, b.v) || (a.t < b.t ? -1 : 1));
    if (spec.latest !== undefined) kept = kept.slice(0, spec.latest);
    tags = kept.map((x) => x.t);
  }
  return [...new Set(tags)].sort();
}
