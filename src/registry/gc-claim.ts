import type { Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { claim, ClaimTimeoutError } from '../gc/claim.js';
import type { RegistryContext } from './context.js';

/**
 * Claims digests a push is about to rely on (see `gc/claim.ts`), before the route checks that they exist.
 * A read-only node pushes nothing and writes nothing, so it claims nothing.
 */
export async function claimForPush(ctx: RegistryContext, digests: Iterable<Digest>): Promise<void> {
  if (ctx.readOnly) return;
  try {
    await claim(ctx.driver, digests);
  } catch (e) {
    if (e instanceof ClaimTimeoutError) throw new OciError('UNKNOWN', e.message, undefined, 503);
    throw e;
  }
}
