import type { S3Client } from '@aws-sdk/client-s3';
import { loadS3Sdk, type S3Sdk } from '../storage/aws-sdk.js';
import type { Readable } from 'node:stream';
import type { WritableLayoutFiles } from './layout-files.js';

/** Where a bucket is reached and with which keys; unset fields come from the AWS environment variables. */
export interface BucketAccess {
  /** `http(s)://host:port` of an S3-compatible server; unset for AWS itself. */
  endpoint?: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
}

/** Parts of a streamed upload: S3 wants at least 5 MiB per part but the last, and at most 10,000 parts. */
const MIN_PART = 8 << 20;
const MAX_PARTS = 10_000;

function isNotFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return err?.$metadata?.httpStatusCode === 404 || err?.name === 'NoSuchKey' || err?.name === 'NotFound';
}

/** The endpoint the flags or the environment name (AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL), if any. */
export function bucketEndpoint(access: BucketAccess): string | undefined {
  return access.endpoint ?? process.env['AWS_ENDPOINT_URL_S3'] ?? process.env['AWS_ENDPOINT_URL'];
}

/** An OCI layout kept under a key prefix of an S3 bucket (the same files as a layout directory). */
export class BucketFiles implements WritableLayoutFiles {
  readonly where: string;
  private readonly prefix: string;
  private connecting: Promise<{ sdk: S3Sdk; c: S3Client }> | undefined;
  private client: S3Client | undefined;

  constructor(
    private readonly bucket: string,
    prefix: string,
    private readonly access: BucketAccess = {},
  ) {
    const p = prefix.replace(/^\/+|\/+$/g, '');
    this.prefix = p ? `${p}/` : '';
    this.where = `s3:${bucket}${p ? `/${p}` : ''}`;
  }

  /** Connects on first use (the SDK loads then: see loadS3Sdk). */
  private connect(): Promise<{ sdk: S3Sdk; c: S3Client }> {
    this.connecting ??= loadS3Sdk().then((sdk) => {
      const endpoint = bucketEndpoint(this.access);
      const { accessKeyId, secretAccessKey } = this.access;
      this.client = new sdk.S3Client({
        region: this.access.region ?? process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'] ?? 'us-east-1',
        ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
        // Without keys on the command line the SDK's default chain reads AWS_ACCESS_KEY_ID and the rest.
        ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey } } : {}),
        // SDK 3.729+ adds CRC checksums that many S3-compatible servers refuse.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      return { sdk, c: this.client };
    });
    return this.connecting;
  }

  private key(path: string): string {
    return this.prefix + path;
  }

  async read(path: string): Promise<Buffer | undefined> {
    const { sdk, c } = await this.connect();
    try {
      const out = await c.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.key(path) }));
      return Buffer.from(await out.Body!.transformToByteArray());
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async size(path: string): Promise<number | undefined> {
    const { sdk, c } = await this.connect();
    try {
      const h = await c.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.key(path) }));
      return h.ContentLength ?? 0;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async stream(path: string): Promise<Readable> {
    const { sdk, c } = await this.connect();
    try {
      const out = await c.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.key(path) }));
      return out.Body as Readable;
    } catch (e) {
      if (isNotFound(e)) throw Object.assign(new Error(`${this.where}: no ${path}`), { code: 'ENOENT' });
      throw e;
    }
  }

  async write(path: string, bytes: Uint8Array): Promise<void> {
    const { sdk, c } = await this.connect();
    // One PutObject replaces an object atomically: readers see the old or the new.
    await c.send(
      new sdk.PutObjectCommand({ Bucket: this.bucket, Key: this.key(path), Body: bytes, ContentLength: bytes.length }),
    );
  }

  /**
   * One PutObject for a blob that fits in a part, else a multipart upload holding one part in memory at a
   * time; the object appears only when the upload completes, and an upload that fails is aborted.
   */
  async writeStream(path: string, body: Readable, size: number): Promise<void> {
    const { sdk, c } = await this.connect();
    const Key = this.key(path);
    const partSize = Math.max(MIN_PART, Math.ceil(size / MAX_PARTS));
    let uploadId: string | undefined;
    const parts: { PartNumber: number; ETag: string }[] = [];
    let pending: Buffer[] = [];
    let pendingSize = 0;
    let total = 0;
    const sendPart = async (part: Buffer): Promise<void> => {
      uploadId ??= (await c.send(new sdk.CreateMultipartUploadCommand({ Bucket: this.bucket, Key }))).UploadId!;
      const PartNumber = parts.length + 1;
      const out = await c.send(
        new sdk.UploadPartCommand({
          Bucket: this.bucket,
          Key,
          UploadId: uploadId,
          PartNumber,
          Body: part,
          ContentLength: part.length,
        }),
      );
      parts.push({ PartNumber, ETag: out.ETag! });
    };
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        pending.push(chunk);
        pendingSize += chunk.length;
        total += chunk.length;
        if (total > size) throw new Error(`got more than ${size} bytes`);
        while (pendingSize >= partSize) {
          const all = Buffer.concat(pending, pendingSize);
          await sendPart(all.subarray(0, partSize));
          const rest = all.subarray(partSize);
          pending = rest.length ? [rest] : [];
          pendingSize = rest.length;
        }
      }
      if (total !== size) throw new Error(`got ${total} bytes, expected ${size}`);
      const last = Buffer.concat(pending, pendingSize);
      if (uploadId === undefined) {
        await c.send(new sdk.PutObjectCommand({ Bucket: this.bucket, Key, Body: last, ContentLength: last.length }));
        return;
      }
      if (last.length > 0) await sendPart(last);
      await c.send(
        new sdk.CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
    } catch (e) {
      body.destroy();
      // An unfinished upload's parts are stored (and billed) until aborted; some servers (s3rver) cannot abort.
      if (uploadId !== undefined)
        await c
          .send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: uploadId }))
          .catch(() => undefined);
      throw e;
    }
  }

  async close(): Promise<void> {
    this.client?.destroy();
  }
}
