import crypto from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import FilesystemStore from 's3rver/lib/stores/filesystem.js';
import { addMultipartCalls, type S3rverStore } from '../../bench/s3rver-multipart.js';
// Makes s3rver's writes atomic, as S3's are (see there).
import './s3rver-atomic.js';

// The tests' own S3 clients, like the driver's (src/storage/aws-sdk.ts), need not print the SDK's notice about
// releases after January 2027 wanting Node 22: it says nothing about the pinned version.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

/**
 * s3rver 3.7.1 lists with a delimiter by walking its directory tree but prunes every directory two levels
 * below the prefix, so a key like `tags/v1/current/link` yields no common prefix `tags/v1/` (real S3 does).
 * Listing without the delimiter and grouping here gives S3's answer, so the driver is tested as S3 sees it.
 */
const listObjects = FilesystemStore.prototype.listObjects;
FilesystemStore.prototype.listObjects = async function (bucket, options) {
  const { delimiter, prefix = '' } = options;
  if (!delimiter) return listObjects.call(this, bucket, options);
  const all = await listObjects.call(this, bucket, { ...options, delimiter: undefined, maxKeys: Infinity });
  const prefixes = new Set<string>();
  const objects = all.objects.filter((o) => {
    const i = o.key.slice(prefix.length).indexOf(delimiter);
    if (i !== -1) prefixes.add(o.key.slice(0, prefix.length + i + 1));
    return i === -1;
  });
  return { objects, commonPrefixes: [...prefixes].sort(), isTruncated: false };
};

/**
 * s3rver 3.7.1 seals ListObjectsV2 continuation tokens with DES, which Node 20's OpenSSL 3 no longer offers,
 * so every truncated listing (more keys than max-keys) answers 500. The token is only ever read back by
 * s3rver itself: for DES alone (nothing else here uses it) the cipher becomes the identity.
 */
for (const name of ['createCipheriv', 'createDecipheriv'] as const) {
  const original = crypto[name] as (...args: unknown[]) => unknown;
  (crypto as unknown as Record<string, unknown>)[name] = (algorithm: string, ...rest: unknown[]) =>
    algorithm === 'des'
      ? {
          update: (d: string | Buffer, enc?: BufferEncoding) => Buffer.from(d as string, enc),
          final: () => Buffer.alloc(0),
        }
      : original(algorithm, ...rest);
}

/** One request the S3 server received: method, URL and the access key that signed it (from Authorization). */
export interface S3Request {
  method: string;
  url: string;
  accessKey: string | undefined;
}

/** An in-process S3 server (s3rver) on 127.0.0.1 for one test file, with every request it receives recorded. */
export interface TestS3 {
  endpoint: string;
  bucket: string;
  requests: S3Request[];
  /** A `storage.s3` config block for this server, keys under `rootdirectory`. */
  config(rootdirectory: string, extra?: Record<string, unknown>): Record<string, unknown>;
  /** Every key in the bucket under a prefix, as S3 itself lists them. */
  keys(prefix: string): Promise<string[]>;
  /** Lets the process exit while the server runs (one server shared by a whole test file); its directory goes at exit. */
  detach(): void;
  close(): Promise<void>;
}

/** Starts s3rver with one bucket in a fresh directory. */
export async function startS3(
  bucket = 'reg',
  opts: {
    /** Answer the multipart calls s3rver lacks (the bench's harness), so Distribution can upload. */ multipart?: boolean;
  } = {},
): Promise<TestS3> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-s3-'));
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory: dir,
    configureBuckets: [{ name: bucket }],
  });
  const addr = await server.run();
  if (opts.multipart) addMultipartCalls(server.httpServer, (server as unknown as { store: S3rverStore }).store);
  const endpoint = `http://127.0.0.1:${addr.port}`;
  const requests: S3Request[] = [];
  server.httpServer.on(
    'request',
    (req: { method?: string; url?: string; headers: Record<string, string | string[] | undefined> }) => {
      const auth = String(req.headers.authorization ?? '');
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        accessKey: /Credential=([^/]+)\//.exec(auth)?.[1],
      });
    },
  );
  return {
    endpoint,
    bucket,
    requests,
    config: (rootdirectory, extra = {}) => ({
      accesskey: 'S3RVER',
      secretkey: 'S3RVER',
      region: 'us-east-1',
      regionendpoint: endpoint,
      bucket,
      rootdirectory,
      secure: false,
      v4auth: true,
      chunksize: 5 << 20,
      ...extra,
    }),
    keys: async (prefix) => {
      const c = new S3Client({
        region: 'us-east-1',
        endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      });
      try {
        const out: string[] = [];
        let token: string | undefined;
        for (let i = 0; i < 100; i++) {
          const r = await c.send(
            new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
          );
          out.push(...(r.Contents ?? []).map((o) => o.Key!));
          if (!r.IsTruncated) break;
          token = r.NextContinuationToken;
        }
        return out;
      } finally {
        c.destroy();
      }
    },
    detach: () => {
      server.httpServer.unref();
      server.httpServer.on('connection', (socket: { unref(): void }) => socket.unref());
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    },
    close: async () => {
      // Registries' SDK clients keep connections open; end them so close() returns.
      server.httpServer.closeAllConnections();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
