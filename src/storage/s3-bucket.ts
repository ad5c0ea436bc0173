// The S3 driver's shared state: one bucket under one root, its lazily loaded SDK client, and the calls on keys.
import type { S3Client, S3ClientConfig, ServerSideEncryption, StorageClass } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { loadS3Sdk, type S3Sdk } from './aws-sdk.js';
import { isNotFound } from './s3-errors.js';

/** The `storage.s3` keys, as Distribution's s3-aws driver names them. */
export interface S3Options {
  accesskey?: string;
  secretkey?: string;
  region: string;
  regionendpoint?: string;
  bucket: string;
  rootdirectory?: string;
  forcepathstyle?: boolean;
  secure?: boolean;
  chunksize?: number;
  storageclass?: string;
  encrypt?: boolean;
  v4auth?: boolean;
  /** Read at start by the registry (registry/immutable-tags.ts), not by the driver. */
  immutabletags?: 'strict' | 'besteffort';
}

/** Distribution's default and minimum part size; S3 refuses smaller parts except the last. */
const DEFAULT_CHUNK = 10 << 20;
export const MIN_CHUNK = 5 << 20;

/** One stored object as a listing or a HEAD describes it. */
export interface S3Object {
  key: string;
  size: number;
  modified: Date;
}

/** The SDK and a client connected to the bucket's endpoint. */
export interface S3Connection {
  sdk: S3Sdk;
  c: S3Client;
}

type BuildArgs = { request: { headers?: Record<string, string>; body?: unknown } };

/**
 * DeleteObjects must carry a checksum. SDK 3.729+ sends a CRC32 (x-amz-checksum-crc32), which AWS takes
 * but S3 APIs older than 2025's checksums refuse (Swift 2.30's s3api: "Missing required header for this
 * request: Content-MD5"): send the Content-MD5 every S3 API knows instead. Runs after the SDK's checksum
 * step and before signing.
 */
const contentMd5ForDeletes =
  (next: (args: BuildArgs) => Promise<unknown>, context: { commandName?: string }) =>
  async (args: BuildArgs): Promise<unknown> => {
    const { headers, body } = args.request;
    if (
      context.commandName === 'DeleteObjectsCommand' &&
      headers &&
      (typeof body === 'string' || body instanceof Uint8Array)
    ) {
      for (const h of Object.keys(headers)) if (/^x-amz-(sdk-)?checksum-/i.test(h)) delete headers[h];
      headers['content-md5'] = createHash('md5').update(body).digest('base64');
    }
    return next(args);
  };

/** A bucket under a root directory: what every part of the S3 driver shares. */
export class S3Bucket {
  /** The bucket's name, as every command's `Bucket`. */
  readonly name: string;
  /** The root directory without slashes at either end ('' for the bucket's top). */
  readonly root: string;
  /** Prepended to every key: the root directory and a slash, or ''. */
  readonly prefix: string;
  /** The size of a writer's parts and of a resent commit's multipart parts. */
  readonly chunk: number;
  /** The storage class and encryption every object written whole is given. */
  readonly extra: { StorageClass?: StorageClass; ServerSideEncryption?: ServerSideEncryption };
  /** Whether the server has UploadPartCopy; unknown until the first commit that could use it. */
  partCopy: boolean | undefined;
  private client: S3Client | undefined;
  private connecting: Promise<S3Connection> | undefined;
  private readonly config: S3ClientConfig;

  constructor(opts: S3Options) {
    this.name = opts.bucket;
    this.root = (opts.rootdirectory ?? '').replace(/^\/+|\/+$/g, '');
    this.prefix = this.root ? `${this.root}/` : '';
    this.chunk = Math.max(MIN_CHUNK, opts.chunksize ?? DEFAULT_CHUNK);
    let endpoint = opts.regionendpoint;
    if (endpoint && !/^https?:\/\//.test(endpoint))
      endpoint = `${opts.secure === false ? 'http' : 'https'}://${endpoint}`;
    const accessKeyId = opts.accesskey ?? process.env['AWS_ACCESS_KEY_ID'];
    const secretAccessKey = opts.secretkey ?? process.env['AWS_SECRET_ACCESS_KEY'];
    this.config = {
      region: opts.region,
      ...(endpoint ? { endpoint } : {}),
      // Distribution 2.8 uses path-style addressing whenever an endpoint is given.
      forcePathStyle: opts.forcepathstyle ?? endpoint !== undefined,
      ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey } } : {}),
      // SDK 3.729+ adds CRC checksums that many S3-compatible servers refuse.
      requestChecksumCalculation: 'WHEN_REQUIRED' as const,
      responseChecksumValidation: 'WHEN_REQUIRED' as const,
    };
    this.extra = {};
    const sc = opts.storageclass ?? 'STANDARD';
    if (sc !== 'NONE') this.extra.StorageClass = sc as StorageClass;
    if (opts.encrypt) this.extra.ServerSideEncryption = 'AES256';
  }

  /** The SDK and a client, loaded on first use. */
  connect(): Promise<S3Connection> {
    this.connecting ??= loadS3Sdk().then((sdk) => {
      this.client = new sdk.S3Client(this.config);
      // Typed loosely: the SDK's middleware types come from @smithy/types, not a dependency of ours.
      (
        this.client.middlewareStack as unknown as {
          add(m: typeof contentMd5ForDeletes, o: { step: 'build'; priority: 'low'; name: string }): void;
        }
      ).add(contentMd5ForDeletes, { step: 'build', priority: 'low', name: 'sluiceContentMd5' });
      return { sdk, c: this.client };
    });
    return this.connecting;
  }

  /** Closes the SDK's connection pool. */
  destroy(): void {
    this.client?.destroy();
  }

  /** The key of a storage path, refused when the path would leave the root. */
  key(path: string): string {
    const p = path.replace(/^\/+|\/+$/g, '');
    if (p.split('/').some((s) => s === '..' || s === '.')) throw new Error(`path escapes storage root: ${path}`);
    return this.prefix + p;
  }

  /** The key prefix of the objects below a storage path, ending in a slash (or '' at the bucket's top). */
  dirKey(path: string): string {
    const k = this.key(path);
    return k === '' || k.endsWith('/') ? k : `${k}/`;
  }

  /** A key as CopyObject and UploadPartCopy name their source. */
  copySource(key: string): string {
    return `${this.name}/${encodeURIComponent(key).replace(/%2F/g, '/')}`;
  }

  /** Every object under a key prefix, page by page (bounded memory per page). */
  async *listAll(prefix: string): AsyncGenerator<S3Object> {
    const { sdk, c } = await this.connect();
    let token: string | undefined;
    for (let pages = 0; pages < 1_000_000; pages++) {
      const out = await c.send(
        new sdk.ListObjectsV2Command({ Bucket: this.name, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of out.Contents ?? [])
        yield { key: o.Key!, size: o.Size ?? 0, modified: o.LastModified ?? new Date(0) };
      if (!out.IsTruncated || !out.NextContinuationToken) return;
      token = out.NextContinuationToken;
    }
  }

  /** An object's size and time by key, or null when absent. */
  async head(key: string): Promise<{ size: number; modified: Date } | null> {
    const { sdk, c } = await this.connect();
    try {
      const h = await c.send(new sdk.HeadObjectCommand({ Bucket: this.name, Key: key }));
      return { size: h.ContentLength ?? 0, modified: h.LastModified ?? new Date(0) };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  /** One object's bytes by key, or null when absent. */
  async getObject(key: string): Promise<Buffer | null> {
    const { sdk, c } = await this.connect();
    try {
      const out = await c.send(new sdk.GetObjectCommand({ Bucket: this.name, Key: key }));
      return Buffer.from(await out.Body!.transformToByteArray());
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  /** Deletes keys, up to 1000 per DeleteObjects request as S3 allows; absent keys are no error. */
  async deleteKeys(keys: string[]): Promise<void> {
    const { sdk, c } = await this.connect();
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      if (batch.length === 1) {
        await c.send(new sdk.DeleteObjectCommand({ Bucket: this.name, Key: batch[0] }));
        continue;
      }
      const out = await c.send(
        new sdk.DeleteObjectsCommand({
          Bucket: this.name,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
      );
      const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length)
        throw new Error(`s3 delete failed for ${failed[0]!.Key}: ${failed[0]!.Code} ${failed[0]!.Message ?? ''}`);
    }
  }
}
