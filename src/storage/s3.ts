import type {
  ListMultipartUploadsCommandOutput,
  S3Client,
  ServerSideEncryption,
  StorageClass,
} from '@aws-sdk/client-s3';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash, randomUUID } from 'node:crypto';
import { loadS3Sdk, type S3Sdk } from './aws-sdk.js';
import type { FileInfo, FileWriter, PutOptions, StorageDriver } from './driver.js';
import { healthProbePath } from './layout.js';
import { HttpStatusError, nothingWritten, pumpGet, type GetRequest } from './http-pump.js';

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
const MIN_CHUNK = 5 << 20;
/** The most one CopyObject or UploadPartCopy takes, and the most parts one multipart upload has. */
const MAX_COPY = 5 * 1024 ** 3;
const MAX_PARTS = 10_000;
/** Server-side part copies sent at once at commit (Distribution copies 32 MiB ranges in parallel too). */
const COPY_CONCURRENCY = 4;
/** Writer parts are named by their start offset, zero-padded so S3's lexical listing is numeric order. */
const OFFSET_DIGITS = 16;
const PARTS_SUFFIX = '.parts';
/**
 * Beside a session's `data`, the multipart upload its commit has open: written before the first part is
 * sent, so a process killed mid-commit leaves a record that upload purging (or the next commit) aborts.
 */
const MULTIPART_SUFFIX = '.multipart';
/**
 * sendTo reads ranges at least this long on a connection of their own into one reused buffer (http-pump.ts);
 * shorter ones take the SDK's pooled connections, where a new connection (and TLS handshake) would cost more
 * than the garbage their reads leave.
 */
const DIRECT_MIN = 1 << 20;

/** The parts of the SDK's signed HttpRequest a GET is sent from. */
interface SdkRequest {
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
}

/** Carries a signed request out of the SDK's middleware stack, which then sends nothing. An Error, so that the SDK rethrows it as it is. */
class SignedOnly extends Error {
  constructor(readonly request: SdkRequest) {
    super('signed, not sent');
  }
}

/** The SDK's escaping of query parts (RFC 3986: encodeURIComponent leaves !'()* alone). */
function escapeQuery(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function toGetRequest(r: SdkRequest): GetRequest {
  const query = Object.entries(r.query ?? {}).flatMap(([k, v]) =>
    v === null ? [escapeQuery(k)] : (Array.isArray(v) ? v : [v]).map((x) => `${escapeQuery(k)}=${escapeQuery(x)}`),
  );
  const url = new URL(
    `${r.protocol}//${r.hostname}${r.port ? `:${r.port}` : ''}${r.path}${query.length ? `?${query.join('&')}` : ''}`,
  );
  return { url, headers: r.headers };
}

type Presigner = typeof import('@aws-sdk/s3-request-presigner');
let presignerLoad: Promise<Presigner> | undefined;

/** What a multipart record says: which upload of which key to abort. */
interface MultipartRecord {
  key: string;
  uploadId: string;
}

/**
 * S3 cannot append, so an upload session's `data` is a base object (written whole by putContent) plus
 * part objects under `data.parts/<offset>`, one per writer flush, which reader and stat join into one.
 * Only upload data is appended to, so only those paths pay the extra listing.
 */
const SEGMENTED = /(^|\/)_uploads\/[^/]+\/data$/;

function isSegmented(path: string): boolean {
  return SEGMENTED.test(path);
}

function errName(e: unknown): string | undefined {
  return (e as { name?: string; Code?: string } | undefined)?.name;
}

function statusOf(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function isNotFound(e: unknown): boolean {
  return statusOf(e) === 404 || errName(e) === 'NoSuchKey' || errName(e) === 'NotFound';
}

/** A server's answer to a call it does not have (s3rver: 501 NotImplemented; some answer 405). */
function isNotImplemented(e: unknown): boolean {
  return (
    statusOf(e) === 501 || statusOf(e) === 405 || errName(e) === 'NotImplemented' || errName(e) === 'MethodNotAllowed'
  );
}

/** S3's answer to `If-None-Match: *` when the object exists. */
function isPreconditionFailed(e: unknown): boolean {
  return statusOf(e) === 412 || errName(e) === 'PreconditionFailed';
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

interface Part {
  key: string;
  size: number;
  modified: Date;
}

/**
 * Stores objects in an S3 bucket under `<rootdirectory>/docker/registry/v2/...`, the keys Distribution's
 * s3-aws driver uses, so either can read a bucket the other wrote.
 */
export class S3Driver implements StorageDriver {
  readonly name = 's3';
  readonly location: string;
  private client: S3Client | undefined;
  private connecting: Promise<{ sdk: S3Sdk; c: S3Client }> | undefined;
  /** The SDK and a client, loaded on first use. */
  private readonly connect: () => Promise<{ sdk: S3Sdk; c: S3Client }>;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly chunk: number;
  private readonly extra: { StorageClass?: StorageClass; ServerSideEncryption?: ServerSideEncryption };
  private conditional: Promise<boolean> | undefined;
  /** Whether the server has UploadPartCopy; unknown until the first commit that could use it. */
  private partCopy: boolean | undefined;

  constructor(opts: S3Options) {
    this.bucket = opts.bucket;
    const root = (opts.rootdirectory ?? '').replace(/^\/+|\/+$/g, '');
    this.prefix = root ? `${root}/` : '';
    this.location = `storage.s3: s3://${opts.bucket}/${root}`;
    this.chunk = Math.max(MIN_CHUNK, opts.chunksize ?? DEFAULT_CHUNK);
    let endpoint = opts.regionendpoint;
    if (endpoint && !/^https?:\/\//.test(endpoint))
      endpoint = `${opts.secure === false ? 'http' : 'https'}://${endpoint}`;
    const accessKeyId = opts.accesskey ?? process.env['AWS_ACCESS_KEY_ID'];
    const secretAccessKey = opts.secretkey ?? process.env['AWS_SECRET_ACCESS_KEY'];
    const config = {
      region: opts.region,
      ...(endpoint ? { endpoint } : {}),
      // Distribution 2.8 uses path-style addressing whenever an endpoint is given.
      forcePathStyle: opts.forcepathstyle ?? endpoint !== undefined,
      ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey } } : {}),
      // SDK 3.729+ adds CRC checksums that many S3-compatible servers refuse.
      requestChecksumCalculation: 'WHEN_REQUIRED' as const,
      responseChecksumValidation: 'WHEN_REQUIRED' as const,
    };
    this.connect = () =>
      (this.connecting ??= loadS3Sdk().then((sdk) => {
        this.client = new sdk.S3Client(config);
        // Typed loosely: the SDK's middleware types come from @smithy/types, not a dependency of ours.
        (
          this.client.middlewareStack as unknown as {
            add(m: typeof contentMd5ForDeletes, o: { step: 'build'; priority: 'low'; name: string }): void;
          }
        ).add(contentMd5ForDeletes, { step: 'build', priority: 'low', name: 'sluiceContentMd5' });
        return { sdk, c: this.client };
      }));
    this.extra = {};
    const sc = opts.storageclass ?? 'STANDARD';
    if (sc !== 'NONE') this.extra.StorageClass = sc as StorageClass;
    if (opts.encrypt) this.extra.ServerSideEncryption = 'AES256';
  }

  /** Closes the SDK's connection pool. */
  destroy(): void {
    this.client?.destroy();
  }

  private key(path: string): string {
    const p = path.replace(/^\/+|\/+$/g, '');
    if (p.split('/').some((s) => s === '..' || s === '.')) throw new Error(`path escapes storage root: ${path}`);
    return this.prefix + p;
  }

  private dirKey(path: string): string {
    const k = this.key(path);
    return k === '' || k.endsWith('/') ? k : `${k}/`;
  }

  /** Every object under a key prefix, page by page (bounded memory per page). */
  private async *listAll(prefix: string): AsyncGenerator<Part> {
    const { sdk, c } = await this.connect();
    let token: string | undefined;
    for (let pages = 0; pages < 1_000_000; pages++) {
      const out = await c.send(
        new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of out.Contents ?? [])
        yield { key: o.Key!, size: o.Size ?? 0, modified: o.LastModified ?? new Date(0) };
      if (!out.IsTruncated || !out.NextContinuationToken) return;
      token = out.NextContinuationToken;
    }
  }

  /** The writer parts of a segmented object, in offset order. */
  private async parts(path: string): Promise<Part[]> {
    const out: Part[] = [];
    for await (const p of this.listAll(`${this.key(path)}${PARTS_SUFFIX}/`)) out.push(p);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  private async head(key: string): Promise<{ size: number; modified: Date } | null> {
    const { sdk, c } = await this.connect();
    try {
      const h = await c.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: h.ContentLength ?? 0, modified: h.LastModified ?? new Date(0) };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async getContent(path: string): Promise<Buffer | null> {
    if (isSegmented(path)) {
      if (!(await this.stat(path))) return null;
      const chunks: Buffer[] = [];
      for await (const piece of await this.reader(path)) chunks.push(piece as Buffer);
      return Buffer.concat(chunks);
    }
    return this.getObject(this.key(path));
  }

  /** One object's bytes by key, or null when absent. */
  private async getObject(key: string): Promise<Buffer | null> {
    const { sdk, c } = await this.connect();
    try {
      const out = await c.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return Buffer.from(await out.Body!.transformToByteArray());
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async putContent(path: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    const { sdk, c } = await this.connect();
    const put = () =>
      c.send(
        new sdk.PutObjectCommand({
          Bucket: this.bucket,
          Key: this.key(path),
          Body: data,
          ContentLength: data.length,
          ...this.extra,
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
    if (isSegmented(path)) await this.deleteKeys((await this.parts(path)).map((p) => p.key));
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
      await this.deleteKeys([this.key(path)]).catch(() => undefined);
    }
  }

  /** A presigned GetObject URL (SigV4 query signature, valid `expiresInSeconds`), so blob bytes go from the bucket to the client. */
  async redirectURL(path: string, expiresInSeconds: number): Promise<string | undefined> {
    // Upload data is several objects joined on read: no one URL serves it.
    if (isSegmented(path)) return undefined;
    const { sdk, c } = await this.connect();
    presignerLoad ??= import('@aws-sdk/s3-request-presigner');
    const { getSignedUrl } = await presignerLoad;
    return getSignedUrl(c, new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.key(path) }), {
      expiresIn: expiresInSeconds,
    });
  }

  /**
   * A GetObject of `key` as the SDK would send it (endpoint, addressing style, credentials, SigV4 headers),
   * taken from its middleware stack right after signing, unsent.
   */
  private async signedGet(key: string, range: string): Promise<GetRequest> {
    const { sdk, c } = await this.connect();
    const cmd = new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range });
    // Typed loosely, as for contentMd5ForDeletes: the middleware types come from @smithy/types.
    (
      cmd.middlewareStack as unknown as {
        addRelativeTo(m: unknown, o: { relation: 'after'; toMiddleware: string; name: string }): void;
      }
    ).addRelativeTo(() => (args: { request: SdkRequest }) => Promise.reject(new SignedOnly(args.request)), {
      relation: 'after',
      toMiddleware: 'httpSigningMiddleware',
      name: 'sluiceSignedOnly',
    });
    try {
      await c.send(cmd);
    } catch (e) {
      if (e instanceof SignedOnly) return toGetRequest(e.request);
      throw e;
    }
    throw new Error('the SDK sent a GetObject that was only to be signed');
  }

  /**
   * Writes an object's range into `out`. A long range of a whole object is fetched with a presigned GET of
   * its own and copied through one reused buffer (see http-pump.ts); the rest, responses that pump cannot
   * frame and answers the SDK would retry go through the SDK's stream.
   */
  async sendTo(path: string, out: Writable, offset: number, length: number): Promise<void> {
    if (!isSegmented(path) && length >= DIRECT_MIN) {
      const key = this.key(path);
      try {
        await pumpGet(await this.signedGet(key, `bytes=${offset}-${offset + length - 1}`), out, length, offset);
        return;
      } catch (e) {
        if (e instanceof HttpStatusError && e.status === 404)
          throw Object.assign(new Error(`no such object: ${key}`), { code: 'ENOENT' });
        // Nothing was written: a busy or failing server (503 SlowDown, 500), a refused or broken connection, a
        // stall before the answer: the SDK asks again, with its retries and backoff. A refusal (403) stands.
        const refused = e instanceof HttpStatusError && e.status < 500 && e.status !== 429;
        if (refused || !nothingWritten(e)) throw e;
      }
    }
    await pipeline(await this.reader(path, offset, length), out, { end: false });
  }

  async stat(path: string): Promise<FileInfo | null> {
    const { sdk, c } = await this.connect();
    const k = this.key(path);
    const h = k === '' ? null : await this.head(k);
    if (h) {
      if (!isSegmented(path)) return { size: h.size, modified: h.modified, isDirectory: false };
      let { size, modified } = h;
      for (const p of await this.parts(path)) {
        size += p.size;
        if (p.modified > modified) modified = p.modified;
      }
      return { size, modified, isDirectory: false };
    }
    // S3 has no directories: a path is one when objects exist below it.
    const out = await c.send(
      new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.dirKey(path), MaxKeys: 1 }),
    );
    const first = out.Contents?.[0];
    if (!first && !(out.CommonPrefixes?.length ?? 0)) return null;
    return { size: 0, modified: first?.LastModified ?? new Date(0), isDirectory: true };
  }

  async reader(path: string, offset = 0, length?: number): Promise<Readable> {
    if (!isSegmented(path)) return this.range(this.key(path), offset, length);
    const base = await this.head(this.key(path));
    if (!base) throw Object.assign(new Error(`no such object: ${path}`), { code: 'ENOENT' });
    const pieces: Part[] = [
      { key: this.key(path), size: base.size, modified: base.modified },
      ...(await this.parts(path)),
    ];
    const end = length === undefined ? Infinity : offset + length;
    // One piece open at a time: memory stays at one response's buffer, whatever the number of parts.
    const self = this;
    async function* joined(): AsyncGenerator<Buffer> {
      let pos = 0;
      for (const p of pieces) {
        const from = Math.max(offset, pos);
        const to = Math.min(end, pos + p.size);
        if (to > from) yield* (await self.range(p.key, from - pos, to - from)) as AsyncIterable<Buffer>;
        pos += p.size;
        if (pos >= end) break;
      }
    }
    return Readable.from(joined(), { objectMode: false });
  }

  private async range(key: string, offset: number, length?: number): Promise<Readable> {
    const { sdk, c } = await this.connect();
    if (length === 0) return Readable.from([], { objectMode: false });
    const range =
      offset > 0 || length !== undefined
        ? `bytes=${offset}-${length === undefined ? '' : offset + length - 1}`
        : undefined;
    try {
      const out = await c.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range }));
      return out.Body as Readable;
    } catch (e) {
      if (isNotFound(e)) throw Object.assign(new Error(`no such object: ${key}`), { code: 'ENOENT' });
      throw e;
    }
  }

  async writer(path: string): Promise<FileWriter> {
    const { sdk, c } = await this.connect();
    if (!isSegmented(path)) throw new Error(`the s3 driver appends only to upload data, not ${path}`);
    const start = (await this.stat(path))?.size ?? 0;
    const written: string[] = [];
    let flushed = start;
    let queued = start;
    let pending: Buffer[] = [];
    let pendingSize = 0;
    let inflight: Promise<void> | undefined;
    let cancelled = false;
    // Only a part's own bytes are copied into one buffer; what stays behind stays in the chunks it came in,
    // so four writers at once hold their parts and little more (joining all of `pending` and copying the
    // rest back out held two extra copies per writer at the peak).
    const takePart = (size: number): Buffer => {
      let n = 0;
      let got = 0;
      while (n < pending.length && got + pending[n]!.length <= size) got += pending[n++]!.length;
      const pieces = pending.splice(0, n);
      if (got < size) {
        const head = pending[0]!;
        pieces.push(head.subarray(0, size - got));
        pending[0] = head.subarray(size - got);
      }
      pendingSize -= size;
      return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, size);
    };
    const partKey = (off: number) => `${this.key(path)}${PARTS_SUFFIX}/${String(off).padStart(OFFSET_DIGITS, '0')}`;
    // Each part is one PutObject named by its offset. One is in flight while the next chunk arrives, so the
    // request is not paused for S3's round trip; memory is bounded by about three chunks per writer.
    const flush = async (final: boolean): Promise<void> => {
      // Kept in `inflight` while awaited, so that cancel waits for it too.
      if (inflight) await inflight;
      if (pendingSize === 0 || cancelled) return;
      // Mid-stream, at least MIN_CHUNK stays behind, so that the last part is big enough for the commit to
      // copy it on the server (UploadPartCopy wants every part but the last to be 5 MiB or more).
      const body = takePart(final ? pendingSize : this.chunk);
      const k = partKey(queued);
      queued += body.length;
      written.push(k);
      inflight = c
        .send(new sdk.PutObjectCommand({ Bucket: this.bucket, Key: k, Body: body, ContentLength: body.length }))
        .then(() => {
          flushed += body.length;
        });
      // Its failure is reported by the next flush or by drain; until then it must not count as unhandled.
      inflight.catch(() => undefined);
    };
    const drain = async (): Promise<void> => {
      await flush(true);
      await inflight;
    };
    let received = 0;
    const stream = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        pending.push(chunk);
        pendingSize += chunk.length;
        received += chunk.length;
        if (pendingSize >= this.chunk + MIN_CHUNK) flush(false).then(() => cb(), cb);
        else cb();
      },
      final: (cb) => {
        drain().then(() => cb(), cb);
      },
    });
    return {
      stream,
      size: () => start + received,
      readable: () => flushed,
      commit: async () => {
        // The stream's final already drained; this only covers a writer ended without finishing.
        await drain();
      },
      cancel: async () => {
        cancelled = true;
        pending = [];
        pendingSize = 0;
        if (!stream.destroyed) stream.destroy();
        // A part still being sent could land after the delete below: let it finish (or fail) first.
        await inflight?.catch(() => undefined);
        // Undo this writer's parts so the upload stays at the offset the client was last told.
        await this.deleteKeys(written);
      },
    };
  }

  async list(path: string): Promise<string[]> {
    const { sdk, c } = await this.connect();
    const prefix = this.dirKey(path);
    const names = new Set<string>();
    let token: string | undefined;
    for (let pages = 0; pages < 1_000_000; pages++) {
      const out = await c.send(
        new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }),
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
    const { sdk, c } = await this.connect();
    const src = this.key(from);
    const dst = this.key(to);
    if (isSegmented(from) && (await this.parts(from)).length > 0) {
      await this.assemble(from, dst);
      await this.delete(from);
      return;
    }
    if (!(await this.head(src))) throw Object.assign(new Error(`no such object: ${from}`), { code: 'ENOENT' });
    // A server-side copy: single CopyObject calls take objects up to 5 GB.
    await c.send(
      new sdk.CopyObjectCommand({ Bucket: this.bucket, Key: dst, CopySource: this.copySource(src), ...this.extra }),
    );
    await c.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: src }));
  }

  /** The base object and part objects of a segmented path that hold bytes, in offset order. */
  private async pieces(path: string): Promise<Part[]> {
    const k = this.key(path);
    const base = await this.head(k);
    const all = [...(base ? [{ key: k, size: base.size, modified: base.modified }] : []), ...(await this.parts(path))];
    return all.filter((p) => p.size > 0);
  }

  /** A key as CopyObject and UploadPartCopy name their source. */
  private copySource(key: string): string {
    return `${this.bucket}/${encodeURIComponent(key).replace(/%2F/g, '/')}`;
  }

  /**
   * Writes a segmented object's joined bytes to `dst`, copying on the server where it can so that the bytes
   * do not cross this process again: one CopyObject when a single piece holds them, else one UploadPartCopy
   * per piece when every piece but the last is big enough to be a part; otherwise (and on servers without
   * UploadPartCopy, s3rver) the bytes are read back and sent again.
   */
  private async assemble(from: string, dst: string): Promise<void> {
    const { sdk, c } = await this.connect();
    const pieces = await this.pieces(from);
    if (pieces.length === 1 && pieces[0]!.size <= MAX_COPY) {
      await c.send(
        new sdk.CopyObjectCommand({
          Bucket: this.bucket,
          Key: dst,
          CopySource: this.copySource(pieces[0]!.key),
          ...this.extra,
        }),
      );
      return;
    }
    const copyable =
      pieces.length > 1 &&
      pieces.length <= MAX_PARTS &&
      pieces.every((p, i) => p.size <= MAX_COPY && (p.size >= MIN_CHUNK || i === pieces.length - 1));
    if (copyable && this.partCopy !== false && (await this.copyParts(from, pieces, dst))) return;
    await this.resend(from, dst);
  }

  /**
   * Opens a multipart upload of `dst` and records it in `record` before any part is sent, so that a process
   * killed mid-commit leaves a record that upload purging (or the next commit) aborts.
   */
  private async openMultipart(record: string, dst: string): Promise<string> {
    const { sdk, c } = await this.connect();
    // An earlier commit of this session that died mid-way left its upload open: abort it first.
    await this.abortRecorded(record);
    const uploadId = (
      await c.send(new sdk.CreateMultipartUploadCommand({ Bucket: this.bucket, Key: dst, ...this.extra }))
    ).UploadId!;
    const rec: MultipartRecord = { key: dst, uploadId };
    await c.send(new sdk.PutObjectCommand({ Bucket: this.bucket, Key: record, Body: JSON.stringify(rec) }));
    return uploadId;
  }

  /** Completes a recorded multipart upload (the object appears at `dst` whole) and removes the record. */
  private async completeMultipart(
    record: string,
    dst: string,
    uploadId: string,
    parts: { PartNumber: number; ETag: string }[],
  ): Promise<void> {
    const { sdk, c } = await this.connect();
    await c.send(
      new sdk.CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key: dst,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
    await this.deleteKeys([record]);
  }

  /**
   * Joins pieces into `dst` with one UploadPartCopy each, a few at once. Returns false, having aborted its
   * upload, when the server turns out not to copy parts: found by the first commit and kept for the process.
   */
  private async copyParts(from: string, pieces: Part[], dst: string): Promise<boolean> {
    const { sdk, c } = await this.connect();
    const record = `${this.key(from)}${MULTIPART_SUFFIX}`;
    const uploadId = await this.openMultipart(record, dst);
    const done: { PartNumber: number; ETag: string }[] = [];
    const copy = async (i: number): Promise<void> => {
      const out = await c.send(
        new sdk.UploadPartCopyCommand({
          Bucket: this.bucket,
          Key: dst,
          UploadId: uploadId,
          PartNumber: i + 1,
          CopySource: this.copySource(pieces[i]!.key),
        }),
      );
      const etag = out.CopyPartResult?.ETag;
      // A server that took the request for a plain UploadPart (of an empty body) would answer no CopyPartResult.
      if (!etag) throw Object.assign(new Error('UploadPartCopy answered without an ETag'), { name: 'NotImplemented' });
      done[i] = { PartNumber: i + 1, ETag: etag };
    };
    try {
      let next = 0;
      if (this.partCopy === undefined) {
        try {
          await copy(next++);
        } catch (e) {
          if (!isNotImplemented(e)) throw e;
          this.partCopy = false;
          await this.abortRecorded(record);
          return false;
        }
        this.partCopy = true;
      }
      let failed = false;
      const worker = async (): Promise<void> => {
        while (!failed && next < pieces.length) {
          try {
            await copy(next++);
          } catch (e) {
            failed = true;
            throw e;
          }
        }
      };
      // Every copy has settled before the upload is completed or aborted.
      const settled = await Promise.allSettled(Array.from({ length: COPY_CONCURRENCY }, worker));
      const bad = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (bad) throw bad.reason;
      await this.completeMultipart(record, dst, uploadId, done);
      return true;
    } catch (e) {
      // Parts of an unfinished multipart upload are billed until aborted.
      await this.abortRecorded(record);
      throw e;
    }
  }

  /**
   * Writes the joined bytes to `dst` by reading them back: one PutObject when they fit in one chunk, else a
   * multipart upload of chunk-sized parts (S3 wants every part but the last to be at least 5 MiB), with one
   * part in flight while the next is read.
   */
  private async resend(from: string, dst: string): Promise<void> {
    const { sdk, c } = await this.connect();
    const src = await this.reader(from);
    let buf: Buffer[] = [];
    let size = 0;
    let uploadId: string | undefined;
    let sent = 0;
    let inflight: Promise<void> | undefined;
    const done: { PartNumber: number; ETag: string }[] = [];
    const record = `${this.key(from)}${MULTIPART_SUFFIX}`;
    const sendPart = async (body: Buffer): Promise<void> => {
      if (inflight) await inflight;
      uploadId ??= await this.openMultipart(record, dst);
      const n = ++sent;
      inflight = c
        .send(
          new sdk.UploadPartCommand({
            Bucket: this.bucket,
            Key: dst,
            UploadId: uploadId,
            PartNumber: n,
            Body: body,
            ContentLength: body.length,
          }),
        )
        .then((out) => {
          done[n - 1] = { PartNumber: n, ETag: out.ETag! };
        });
      // Its failure is reported by the next sendPart or before completing; until then it is not unhandled.
      inflight.catch(() => undefined);
    };
    try {
      for await (const piece of src as AsyncIterable<Buffer>) {
        buf.push(piece);
        size += piece.length;
        while (size >= this.chunk) {
          const all = Buffer.concat(buf, size);
          await sendPart(all.subarray(0, this.chunk));
          const rest = all.subarray(this.chunk);
          buf = rest.length ? [Buffer.from(rest)] : [];
          size = rest.length;
        }
      }
      const last = Buffer.concat(buf, size);
      if (uploadId === undefined) {
        await c.send(
          new sdk.PutObjectCommand({
            Bucket: this.bucket,
            Key: dst,
            Body: last,
            ContentLength: last.length,
            ...this.extra,
          }),
        );
        return;
      }
      if (last.length > 0) await sendPart(last);
      await inflight;
      await this.completeMultipart(record, dst, uploadId, done);
    } catch (e) {
      await inflight?.catch(() => undefined);
      // Parts of an unfinished multipart upload are billed until aborted; some servers (s3rver) cannot.
      if (uploadId !== undefined) await this.abortRecorded(record);
      src.destroy();
      throw e;
    }
  }

  /** Aborts the multipart upload a record names, then removes the record; a server without Abort (s3rver) is tolerated. */
  private async abortRecorded(recordKey: string): Promise<void> {
    const { sdk, c } = await this.connect();
    const bytes = await this.getObject(recordKey);
    if (!bytes) return;
    let rec: MultipartRecord;
    try {
      rec = JSON.parse(bytes.toString('utf8')) as MultipartRecord;
    } catch {
      // An unreadable record names no upload to abort: it is only removed.
      await this.deleteKeys([recordKey]);
      return;
    }
    // NoSuchUpload (already completed or aborted) and MethodNotAllowed/NotImplemented all leave nothing to do.
    await c
      .send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: rec.key, UploadId: rec.uploadId }))
      .catch(() => undefined);
    await this.deleteKeys([recordKey]);
  }

  /**
   * Aborts multipart uploads under this root begun before `before`, by listing them: this also catches an
   * upload whose process died between creating it and recording it. Servers without ListMultipartUploads
   * (s3rver) answer an error, and then only recorded uploads are aborted (by upload purging).
   */
  async abortStaleUploads(before: Date): Promise<string[]> {
    const { sdk, c } = await this.connect();
    const aborted: string[] = [];
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (let pages = 0; pages < 10_000; pages++) {
      let out: ListMultipartUploadsCommandOutput;
      try {
        out = await c.send(
          new sdk.ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: this.prefix,
            KeyMarker: keyMarker,
            UploadIdMarker: idMarker,
          }),
        );
      } catch (e) {
        if (pages === 0 && isNotImplemented(e)) return aborted;
        throw e;
      }
      for (const u of out.Uploads ?? []) {
        if (!u.Key || !u.UploadId || !u.Initiated || u.Initiated >= before) continue;
        await c
          .send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }))
          .catch(() => undefined);
        aborted.push(u.Key.slice(this.prefix.length));
      }
      if (!out.IsTruncated) break;
      keyMarker = out.NextKeyMarker;
      idMarker = out.NextUploadIdMarker;
    }
    return aborted;
  }

  async delete(path: string): Promise<void> {
    const keys: string[] = [];
    const k = this.key(path);
    if (k !== '' && (await this.head(k))) keys.push(k);
    const flushKeys = async () => {
      const batch = keys.splice(0);
      // A session folder may hold the record of a commit that died mid-way: its upload goes with it.
      for (const key of batch)
        if (key.endsWith(`/data${MULTIPART_SUFFIX}`) && key.includes('/_uploads/')) await this.abortRecorded(key);
      await this.deleteKeys(batch);
    };
    for (const prefix of [this.dirKey(path), ...(isSegmented(path) ? [`${k}${PARTS_SUFFIX}/`] : [])]) {
      for await (const p of this.listAll(prefix)) {
        keys.push(p.key);
        if (keys.length >= 1000) await flushKeys();
      }
    }
    await flushKeys();
  }

  /** Deletes keys, up to 1000 per DeleteObjects request as S3 allows; absent keys are no error. */
  private async deleteKeys(keys: string[]): Promise<void> {
    const { sdk, c } = await this.connect();
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      if (batch.length === 1) {
        await c.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: batch[0] }));
        continue;
      }
      const out = await c.send(
        new sdk.DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
      );
      const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length)
        throw new Error(`s3 delete failed for ${failed[0]!.Key}: ${failed[0]!.Code} ${failed[0]!.Message ?? ''}`);
    }
  }
}
