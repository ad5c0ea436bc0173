import type { Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { ClaimTimeoutError } from '../gc/claim.js';
import type { RegistryContext } from './context.js';

/**
 * Claims digests a push, a cache fill or a mirror job is about to rely on (see `gc/claim.ts`), before it
 * checks that they exist. A read-only node writes nothing, so it claims nothing.
 */
export async function claimForPush(ctx: RegistryContext, digests: Iterable<Digest>): Promise<void> {
  if (ctx.readOnly) return;
  try {
    await ctx.claims.claim(digests);
  } catch (e) {
    if (e instanceof ClaimTimeoutError) throw new OciError('UNKNOWN', e.message, undefined, 503);
    throw e;
  }
}
