// semver's index requires all 47 of its files; Sluice's few functions are required one by one.
import type SemVer from 'semver/classes/semver.js';
import clean from 'semver/functions/clean.js';
import coerce from 'semver/functions/coerce.js';
import parse from 'semver/functions/parse.js';

/**
 * The version a tag names: `1.2.3`, `v1.2`, `1` and `1.25-alpine` (the suffix counts as a pre-release, as
 * semver has it, so ranges leave it out unless they name pre-releases); `latest` or `sha256-…` name none.
 * Mirror jobs and retention rules read tags as versions the same way.
 */
export function versionOf(tag: string): SemVer | null {
  if (!/^v?\d+(\.\d+){0,2}([-+][0-9A-Za-z.-]+)?$/.test(tag)) return null;
  return parse(clean(tag, { loose: true }) ?? '') ?? coerce(tag, { includePrerelease: true });
}
