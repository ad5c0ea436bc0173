import { BucketFiles, type BucketAccess } from './bucket-files.js';
import { LayoutDestination, LayoutSource } from './oci-layout.js';
import type { TransportOptions } from './options.js';

/** `s3:BUCKET[/PREFIX][:REF]` split: the reference follows the first colon, as in `oci:DIR:REF`. */
export function parseBucketReference(rest: string): { bucket: string; prefix: string; ref?: string } {
  const colon = rest.indexOf(':');
  const place = colon < 0 ? rest : rest.slice(0, colon);
  const ref = colon < 0 ? '' : rest.slice(colon + 1);
  const slash = place.indexOf('/');
  const bucket = slash < 0 ? place : place.slice(0, slash);
  const prefix = slash < 0 ? '' : place.slice(slash + 1).replace(/\/+$/, '');
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
    throw new Error(`s3:${rest}: "${bucket}" is not a bucket name (s3:BUCKET[/PREFIX][:REF])`);
  return ref ? { bucket, prefix, ref } : { bucket, prefix };
}

/** Settings only the s3: transport reads (`--s3-endpoint`, `--s3-region`); unset, the AWS environment variables decide. */
export interface BucketOptions {
  s3Endpoint?: string;
  s3Region?: string;
}

/** Endpoint, region and keys from the command line (`--src-creds ACCESS_KEY:SECRET_KEY`, `--s3-endpoint`). */
function bucketAccess(opts: TransportOptions & BucketOptions): BucketAccess {
  const a: BucketAccess = {};
  if (opts.s3Endpoint) a.endpoint = opts.s3Endpoint;
  if (opts.s3Region) a.region = opts.s3Region;
  if (opts.creds) {
    const i = opts.creds.indexOf(':');
    if (i < 1) throw new Error('for s3: the credentials are ACCESS_KEY:SECRET_KEY');
    a.accessKeyId = opts.creds.slice(0, i);
    a.secretAccessKey = opts.creds.slice(i + 1);
  }
  return a;
}

/** Opens an OCI layout kept in a bucket, `s3:BUCKET[/PREFIX][:REF]`, for reading. */
export function openBucketSource(rest: string, opts: TransportOptions & BucketOptions): Promise<LayoutSource> {
  const { bucket, prefix, ref } = parseBucketReference(rest);
  return LayoutSource.open(new BucketFiles(bucket, prefix, bucketAccess(opts)), ref, `s3:${rest}`);
}

/** Opens (or starts) an OCI layout kept in a bucket, `s3:BUCKET[/PREFIX][:TAG]`, for writing. */
export function openBucketDestination(
  rest: string,
  opts: TransportOptions & BucketOptions,
): Promise<LayoutDestination> {
  const { bucket, prefix, ref } = parseBucketReference(rest);
  return LayoutDestination.open(new BucketFiles(bucket, prefix, bucketAccess(opts)), ref, `s3:${rest}`);
}
