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
  // Names come from JSON too, where a number or an object may stand in for the string.
  return typeof text === 'string' && text.length > 0 && text.length <= MAX_NAME_LENGTH && NAME_RE.test(text);
}

/** True when the text is a valid tag. */
export function isTag(text: string): boolean {
  return typeof text === 'string' && TAG_RE.test(text);
}

// The image-layout spec's grammar for `org.opencontainers.image.ref.name` (a tag, or a full reference), with runs
// of separators allowed, as full references carry Distribution's `__`: a component still starts and ends with a
// letter or digit, so none is `..` or empty.
const REF_COMPONENT = '[A-Za-z0-9]+(?:[-._:@+]+[A-Za-z0-9]+)*';
const REF_NAME_RE = new RegExp(`^${REF_COMPONENT}(?:/${REF_COMPONENT})*$`);
/** Longest ref.name accepted: a full reference (registry, 255-character name, tag or digest) fits. */
export const MAX_REF_NAME_LENGTH = 512;

/** True when the text is a valid `org.opencontainers.image.ref.name` of an OCI image layout. */
export function isRefName(text: string): boolean {
  return typeof text === 'string' && text.length <= MAX_REF_NAME_LENGTH && REF_NAME_RE.test(text);
}

/** Longest stretch of an outside value quoted in a message; a hostile name may be megabytes long. */
const QUOTE_MAX = 80;

/** Quotes a value from outside for a message or log line: escaped (no control characters reach a log) and cut short. */
export function quoteName(text: string): string {
  const cut = text.length > QUOTE_MAX ? `${text.slice(0, QUOTE_MAX)}…` : text;
  return `${JSON.stringify(cut)}${text.length > QUOTE_MAX ? ` (${text.length} characters)` : ''}`;
}
