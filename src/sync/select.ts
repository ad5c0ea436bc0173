import type SemVer from 'semver/classes/semver.js';
import rcompare from 'semver/functions/rcompare.js';
import satisfies from 'semver/functions/satisfies.js';
import { isTag } from '../oci/name.js';
import { compileTagFilter } from '../policy/flows.js';
import { versionOf } from '../policy/versions.js';
import type { MirrorConfig } from './config.js';

/**
 * Picks the tags a job mirrors from the upstream's list: include/exclude globs or regexes, then a
 * semver range, then the `latest` N by version order (highest first). Pure: no I/O.
 */
export function selectTags(all: string[], spec: MirrorConfig['tags']): string[] {
  if (!spec) return [...all].sort();
  const filter = compileTagFilter(spec.include, spec.exclude);
  let tags = all.filter(filter);
  if (spec.semver !== undefined || spec.latest !== undefined) {
    const versioned = tags
      .map((t) => ({ t, v: versionOf(t) }))
      .filter((x): x is { t: string; v: SemVer } => x.v !== null);
    let kept = versioned;
    if (spec.semver !== undefined)
      kept = kept.filter((x) => satisfies(x.v, spec.semver!, { includePrerelease: false, loose: true }));
    kept.sort((a, b) => rcompare(a.v, b.v) || (a.t < b.t ? -1 : 1));
    if (spec.latest !== undefined) kept = kept.slice(0, spec.latest);
    tags = kept.map((x) => x.t);
  }
  return [...new Set(tags)].sort();
}

const ESCAPED_TAG = /^\/\^((?:[A-Za-z0-9_-]|\\\.)+)\$\/$/;

/** The tag an include entry names literally (`1.36`, or skopeo's listed tags as `/^1\.36$/`), if it names one. */
function literalTag(entry: string): string | null | undefined {
  if (isTag(entry)) return entry;
  // skopeo's YAML listing only digests: no tag at all.
  if (entry === '/^$/') return null;
  const m = ESCAPED_TAG.exec(entry);
  const tag = m?.[1]?.replace(/\\\./g, '.');
  return tag && isTag(tag) ? tag : undefined;
}

/**
 * The tags a selection names outright, when it is nothing but a list of tag names (less any excluded):
 * then the upstream's tag list is not needed. Undefined when it needs the list (globs, regexes, semver,
 * latest N, or no tags given, which means every tag). Pure: no I/O.
 */
export function literalTags(spec: MirrorConfig['tags']): string[] | undefined {
  if (!spec?.include || spec.semver !== undefined || spec.latest !== undefined) return undefined;
  const tags = spec.include.map(literalTag);
  if (tags.some((t) => t === undefined)) return undefined;
  const keep = compileTagFilter(undefined, spec.exclude);
  return [...new Set(tags.filter((t): t is string => typeof t === 'string'))].filter(keep).sort();
}
