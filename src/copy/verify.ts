import { Transform, type TransformCallback } from 'node:stream';
import { Digester, parseDigest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';

/** Thrown when a blob's bytes do not match its descriptor. */
export class BlobVerificationError extends Error {}

/**
 * Passes a blob through while hashing and counting it; fails the stream (before it ends) when the
 * size or digest differ from the descriptor, so no destination commits a wrong blob.
 */
export class VerifyStream extends Transform {
  private readonly digester: Digester;
  private seen = 0;

  constructor(
    private readonly descriptor: Descriptor,
    private readonly onBytes?: (n: number) => void,
  ) {
    super({ highWaterMark: 1024 * 1024 });
    this.digester = new Digester(parseDigest(descriptor.digest).algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.descriptor.size) {
      cb(new BlobVerificationError(`blob ${this.descriptor.digest} is longer than its ${this.descriptor.size} bytes`));
      return;
    }
    this.digester.update(chunk);
    this.onBytes?.(chunk.length);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.seen !== this.descriptor.size) {
      cb(
        new BlobVerificationError(`blob ${this.descriptor.digest} has ${this.seen} bytes, not ${this.descriptor.size}`),
      );
      return;
    }
    const got = this.digester.digest();
    if (got !== this.descriptor.digest) {
      cb(new BlobVerificationError(`blob ${this.descriptor.digest} arrived with digest ${got}`));
      return;
    }
    cb();
  }
}
