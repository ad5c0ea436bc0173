import { createRequire } from 'node:module';
import { inTurn } from './s3rver-atomic.js';

const require = createRequire(import.meta.url);

/** What s3rver's object controller hands a call, as far as the tests look. */
export interface S3rverCtx {
  headers: Record<string, string | undefined>;
  params: { bucket: string; key: string };
  store: { existsObject(bucket: string, key: string): Promise<boolean> };
}

/** s3rver's object controller, whose putObject a test may wrap. */
export const objectController = require('s3rver/lib/controllers/object.js') as {
  putObject: (ctx: S3rverCtx) => Promise<void>;
};

/**
 * Makes s3rver honour `If-None-Match: *` on PutObject as AWS S3 does since 2024 (412 when the key exists),
 * serialising such writes per key as S3 does. s3rver ignores the header; this lets the tests run the
 * conditional path against real nodes. It is an emulation of AWS's documented behaviour, not AWS.
 * Returns the function that undoes it.
 */
export function emulateConditionalPuts(): () => void {
  const S3Error = require('s3rver/lib/models/error.js') as new (
    code: string,
    message: string,
    detail?: Record<string, string>,
  ) => Error;
  const original = objectController.putObject;
  objectController.putObject = function (this: unknown, ctx: S3rverCtx) {
    if (ctx.headers['if-none-match'] !== '*') return original.call(this, ctx);
    return inTurn(`conditional\0${ctx.params.bucket}\0${ctx.params.key}`, async () => {
      if (await ctx.store.existsObject(ctx.params.bucket, ctx.params.key)) {
        throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
          Condition: 'If-None-Match',
        });
      }
      await original.call(this, ctx);
    });
  };
  return () => {
    objectController.putObject = original;
  };
}
