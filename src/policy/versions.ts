import semver from 'semver';

/**
 * The version a tag names: `1.2.3`, `v1.2`, `1` and `1.25-alpine` (the suffix counts as a pre-release, as
 * semver has it, so ranges leave it out unless they name pre-releases); `latest` or `sha256-…` name none.
 * Mirror jobs and retention rules read tags as versions the same way.
 */
export function versionOf(tag: string): semver.SemVer | null {
  if (!/^v?\d+(\.\d+){0,2}([-+][0-9A-Za-z.-]+)?$/.test(tag)) return null;
  return semver.parse(semver.clean(tag, { loose: true }) ?? '') ?? semver.coerce(tag, { includePrerelease: true });
}
