/** A repository name inside a registry, such as `team-a/app`. */
export type RepositoryName = string & { readonly __repository: unique symbol };

// The distribution spec's name grammar; `..`, empty segments and upper case cannot match it.
const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Longest repository name accepted, as in Distribution. */
export const MAX_NAME_LENGTH = 255;

/** True when the text is a valid repository name. */
export function isRepositoryName(text: string): text is RepositoryName {
  return text.length > 0 && text.length <= MAX_NAME_LENGTH && NAME_RE.test(text);
}

/** True when the text is a valid tag. */
export function isTag(text: string): boolean {
  return TAG_RE.test(text);
}
