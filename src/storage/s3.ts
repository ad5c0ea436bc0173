// The S3 storage driver: StorageDriver's calls on a bucket, Distribution's s3-aws layout; the parts live beside it
// (s3-bucket: shared state and key calls; s3-segments: appendable upload data; s3-multipart: commits;
// s3-signed-get: presigned and pumped GETs; s3-errors: reading SDK errors).
import { pipeline } from 'node:stream/promises';
import { randomUUID } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import type { FileInfo, FileWriter, PutOptions, StorageDriver } from './driver.js';
import { healthProbePath } from './layout.js';
import { S3Bucket, type S3Options } from './s3-bucket.js';
import { errName, isPreconditionFailed, statusOf } from './s3-errors.js';
import { abortRecorded, abortStaleUploads, assemble, MULTIPART_SUFFIX } from './s3-multipart.js';
import { isSegmented, joinedReader, PARTS_SUFFIX, partWriter, parts, range } from './s3-segments.js';
import { DIRECT_MIN, presignedGet, pumpRange } from './s3-signed-get.js';

export type { S3Options } from './s3-bucket.js';

/**
 * Stores objects in an S3 bucket under `<rootdirectory>/docker/registry/v2/...`, the keys Distribution's
 * s3-aws driver uses, so either can read a bucket the other wrote.
 */
export class S3Driver implements StorageDriver {
  readonly name = 's3';
  readonly location: string;
  private readonly b: S3Bucket;
  private conditional: Promise<boolean> | undefined;

  constructor(opts: S3Options) {
    this.b = new S3Bucket(opts);
    this.location = `storage.s3: s3://${opts.bucket}/${this.b.root}`;
  }

  /** Closes the SDK's connection pool. */
  destroy(): void {
    this.b.destroy();
  }

  async getContent(path: string): Promise<Buffer | null> {
    if (isSegmented(path)) {
      if (!(await this.stat(path))) return null;
      const chunks: Buffer[] = [];
      for await (const piece of await this.reader(path)) chunks.push(piece as Buffer);
      return Buffer.concat(chunks);
    }
    return this.b.getObject(this.b.key(path));
  }

  async putContent(path: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    const b = this.b;
    const { sdk, c } = await b.connect();
    const put = () =>
      c.send(
        new sdk.PutObjectCommand({
          Bucket: b.name,
          Key: b.key(path),
          Body: data,
          ContentLength: data.length,
          ...b.extra,
          ...(options?.ifAbsent ? { IfNoneMatch: '*' } : {}),
        }),
      );
    // A PutObject is atomic and durable once acknowledged: there is nothing to flush.
    for (let attempt = 0; ; attempt++) {
      try {
        await put();
        break;
      } catch (e) {
        if (options?.ifAbsent && isPreconditionFailed(e))
          throw Object.assign(new Error(`object exists: ${path}`), { code: 'EEXIST' });
        // 409 ConditionalRequestConflict: another conditional write to this key is in flight; its outcome decides.
        if (options?.ifAbsent && statusOf(e) === 409 && attempt < 5) {
          await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
          continue;
        }
        throw e;
      }
    }
    if (isSegmented(path)) await b.deleteKeys((await parts(b, path)).map((p) => p.key));
  }

  /**
   * Whether the server honours `If-None-Match: *` on PutObject (AWS S3 since 2024, MinIO), found once by a
   * probe that writes one object twice: servers that ignore the header (s3rver, older Ceph) let the second
   * write through, and then a tag created "only if absent" could still be overwritten by another node.
   */
  exclusiveCreate(): Promise<boolean> {
    // A probe that failed for another reason (the network, a 5xx) is asked again next time.
    this.conditional ??= this.probeConditional().catch((e: unknown) => {
      this.conditional = undefined;
      throw e;
    });
    return this.conditional;
  }

  private async probeConditional(): Promise<boolean> {
    const path = healthProbePath(`conditional-${randomUUID()}`);
    const body = Buffer.from('probe');
    try {
      await this.putContent(path, body, { ifAbsent: true });
      await this.putContent(path, body, { ifAbsent: true });
      return false;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return true;
      // A server that refuses the header (Swift: 501 NotImplemented; others 400) cannot do conditional writes.
      if (statusOf(e) === 501 || statusOf(e) === 400 || errName(e) === 'NotImplemented') return false;
      throw e;
    } finally {
      await this.b.deleteKeys([this.b.key(path)]).catch(() => undefined);
    }
  }

  /** A presigned GetObject URL (SigV4 query signature, valid `expiresInSeconds`), so blob bytes go from the bucket to the client. */
  async redirectURL(path: string, expiresInSeconds: number): Promise<string | undefined> {
    // Upload data is several objects joined on read: no one URL serves it.
    if (isSegmented(path)) return undefined;
    return presignedGet(this.b, this.b.key(path), expiresInSeconds);
  }

  /**
   * Writes an object's range into `out`. A long range of a whole object is fetched with a presigned GET of
   * its own and copied through one reused buffer (see http-pump.ts); the rest, responses that pump cannot
   * frame and answers the SDK would retry go through the SDK's stream.
   */
  async sendTo(path: string, out: Writable, offset: number, length: number): Promise<void> {
    if (!isSegmented(path) && length >= DIRECT_MIN && (await pumpRange(this.b, this.b.key(path), out, offset, length)))
      return;
    await pipeline(await this.reader(path, offset, length), out, { end: false });
  }

  async stat(path: string): Promise<FileInfo | null> {
    const b = this.b;
    const { sdk, c } = await b.connect();
    const k = b.key(path);
    const h = k === '' ? null : await b.head(k);
    if (h) {
      if (!isSegmented(path)) return { size: h.size, modified: h.modified, isDirectory: false };
      let { size, modified } = h;
      for (const p of await parts(b, path)) {
        size += p.size;
        if (p.modified > modified) modified = p.modified;
      }
      return { size, modified, isDirectory: false };
    }
    // S3 has no directories: a path is one when objects exist below it.
    const out = await c.send(new sdk.ListObjectsV2Command({ Bucket: b.name, Prefix: b.dirKey(path), MaxKeys: 1 }));
    const first = out.Contents?.[0];
    if (!first && !(out.CommonPrefixes?.length ?? 0)) return null;
    return { size: 0, modified: first?.LastModified ?? new Date(0), isDirectory: true };
  }

  async reader(path: string, offset = 0, length?: number): Promise<Readable> {
    if (!isSegmented(path)) return range(this.b, this.b.key(path), offset, length);
    return joinedReader(this.b, path, offset, length);
  }

  async writer(path: string): Promise<FileWriter> {
    await this.b.connect();
    if (!isSegmented(path)) throw new Error(`the s3 driver appends only to upload data, not ${path}`);
    const start = (await this.stat(path))?.size ?? 0;
    return partWriter(this.b, path, start);
  }

  async list(path: string): Promise<string[]> {
    const b = this.b;
    const { sdk, c } = await b.connect();
    const prefix = b.dirKey(path);
    const names = new Set<string>();
    let token: string | undefined;
    for (let pages = 0; pages < 1_000_000; pages++) {
      const out = await c.send(
        new sdk.ListObjectsV2Command({ Bucket: b.name, Prefix: prefix, Delimiter: '/', ContinuationToken: token }),
      );
      for (const p of out.CommonPrefixes ?? []) names.add(p.Prefix!.slice(prefix.length).replace(/\/$/, ''));
      for (const o of out.Contents ?? []) names.add(o.Key!.slice(prefix.length));
      if (!out.IsTruncated || !out.NextContinuationToken) break;
      token = out.NextContinuationToken;
    }
    const dir = path.replace(/\/+$/, '');
    // A segmented object's parts folder is part of the object, not a child of its own.
    return [...names].filter(
      (n) => n !== '' && !(n.endsWith(PARTS_SUFFIX) && isSegmented(`${dir}/${n.slice(0, -PARTS_SUFFIX.length)}`)),
    );
  }

  async move(from: string, to: string): Promise<void> {
    const b = this.b;
    const { sdk, c } = await b.connect();
    const src = b.key(from);
    const dst = b.key(to);
    if (isSegmented(from) && (await parts(b, from)).length > 0) {
      await assemble(b, from, dst);
      await this.delete(from);
      return;
    }
    if (!(await b.head(src))) throw Object.assign(new Error(`no such object: ${from}`), { code: 'ENOENT' });
    // A server-side copy: single CopyObject calls take objects up to 5 GB.
    await c.send(new sdk.CopyObjectCommand({ Bucket: b.name, Key: dst, CopySource: b.copySource(src), ...b.extra }));
    await c.send(new sdk.DeleteObjectCommand({ Bucket: b.name, Key: src }));
  }

  /**
   * Aborts multipart uploads under this root begun before `before`, by listing them: this also catches an
   * upload whose process died between creating it and recording it. Servers without ListMultipartUploads
   * (s3rver) answer an error, and then only recorded uploads are aborted (by upload purging).
   */
  abortStaleUploads(before: Date): Promise<string[]> {
    return abortStaleUploads(this.b, before);
  }

  async delete(path: string): Promise<void> {
    const b = this.b;
    const keys: string[] = [];
    const k = b.key(path);
    if (k !== '' && (await b.head(k))) keys.push(k);
    const flushKeys = async () => {
      const batch = keys.splice(0);
      // A session folder may hold the record of a commit that died mid-way: its upload goes with it.
      for (const key of batch)
        if (key.endsWith(`/data${MULTIPART_SUFFIX}`) && key.includes('/_uploads/')) await abortRecorded(b, key);
      await b.deleteKeys(batch);
    };
    for (const prefix of [b.dirKey(path), ...(isSegmented(path) ? [`${k}${PARTS_SUFFIX}/`] : [])]) {
      for await (const p of b.listAll(prefix)) {
        keys.push(p.key);
        if (keys.length >= 1000) await flushKeys();
      }
    }
    await flushKeys();
  }
}
