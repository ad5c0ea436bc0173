import { quoteName } from '../oci/name.js';

/** Which kind of name a storage path was to be built from. */
export type NameKind = 'repository name' | 'tag' | 'digest' | 'upload id';

/**
 * A storage path was asked for with a name outside its grammar. The layout refuses it before any path is
 * built, whoever the caller, so a name from an upstream, an archive or a request can never reach another
 * repository's files; the registry answers NAME_INVALID, TAG_INVALID, DIGEST_INVALID or BLOB_UPLOAD_UNKNOWN.
 */
export class InvalidNameError extends Error {
  override readonly name = 'InvalidNameError';
  constructor(
    readonly kind: NameKind,
    readonly value: string,
  ) {
    super(`invalid ${kind} ${quoteName(value)}`);
  }
}
