import { Transform, type TransformCallback } from 'node:stream';
import { Digester } from '../oci/digest.js';

/** Passes bytes through unchanged while hashing and counting them; read `digester` and `bytes` after the end. */
export class MeasureStream extends Transform {
  readonly digester = new Digester();
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.digester.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}
