import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, open, readFile, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import FilesystemStore from 's3rver/lib/stores/filesystem.js';

/**
 * s3rver 3.7.1's filesystem store is not the S3 the tests mean to run against (test/storage/s3-testserver.test.ts):
 * - putObject writes the object file in place (a second PUT of the key truncates what a reader is reading, and
 *   two PUTs at once interleave their bytes) and answers before the file is written;
 * - deleteObject removes folders it emptied, and a PUT into such a folder in that moment fails with ENOENT
 *   (an uncaught exception of the server) or the delete with ENOTEMPTY.
 * Here an object is written to a staged file beside its place and renamed into it once whole, its md5 and
 * metadata likewise; the renames of one key and a reader's look at it take turns; creating a folder for a
 * staged file and removing emptied folders take turns per bucket. S3 itself promises exactly this: a PUT is
 * atomic, and a reader sees the old object or the new one.
 */

const require = createRequire(import.meta.url);
const { ALLOWED_METADATA } = require('s3rver/lib/models/object.js') as { ALLOWED_METADATA: string[] };

interface S3rverObject {
  bucket: string;
  key: string;
  content: Buffer | Readable;
  metadata: Record<string, string>;
}

interface Store {
  rootDirectory: string;
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  getBucketPath(bucket: string): string;
  getMetadata(bucket: string, key: string): Promise<Record<string, unknown>>;
  getObject(bucket: string, key: string, options?: unknown): Promise<unknown>;
  putObject(object: S3rverObject): Promise<{ size: number; md5: string }>;
  copyObject(
    srcBucket: string,
    srcKey: string,
    destBucket: string,
    destKey: string,
    replacement?: Record<string, string>,
  ): Promise<unknown>;
  deleteObject(bucket: string, key: string): Promise<void>;
}

const tails = new Map<string, Promise<unknown>>();

/** Runs `fn` once every earlier call with the same key has settled. */
export function inTurn<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const run = (tails.get(key) ?? Promise.resolve()).catch(() => undefined).then(fn);
  tails.set(key, run);
  run
    .finally(() => {
      if (tails.get(key) === run) tails.delete(key);
    })
    .catch(() => undefined);
  return run;
}

const keyTurn = (store: Store, bucket: string, key: string) => `key\0${store.rootDirectory}\0${bucket}\0${key}`;
const folderTurn = (store: Store, bucket: string) => `folders\0${store.rootDirectory}\0${bucket}`;

/** The metadata file's JSON, as s3rver's putMetadata writes it. */
function metadataJson(m: Record<string, string>): string {
  const kept = Object.entries(m).filter(([k]) => ALLOWED_METADATA.includes(k) || k.startsWith('x-amz-meta-'));
  return JSON.stringify(Object.fromEntries(kept), null, 2);
}

/** The object, md5 and metadata files of a key, and staged names beside them (which listings skip). */
function filesOf(store: Store, bucket: string, key: string) {
  const object = store.getResourcePath(bucket, key, 'object');
  const md5 = store.getResourcePath(bucket, key, 'object.md5');
  const meta = store.getResourcePath(bucket, key, 'metadata.json');
  const id = randomUUID();
  return {
    object,
    md5,
    meta,
    staged: { object: `${object}.${id}.staged`, md5: `${md5}.${id}.staged`, meta: `${meta}.${id}.staged` },
  };
}

type Files = ReturnType<typeof filesOf>;

/** Creates the staged object file, empty, so that its folder cannot be removed as empty until the renames. */
function pinFolder(store: Store, bucket: string, f: Files): Promise<void> {
  return inTurn(folderTurn(store, bucket), async () => {
    await mkdir(dirname(f.object), { recursive: true });
    await (await open(f.staged.object, 'wx')).close();
  });
}

/** Removes what a failed write staged. */
async function unstage(f: Files): Promise<void> {
  for (const p of Object.values(f.staged)) await unlink(p).catch(() => undefined);
}

/** Moves the staged files into place as one step for readers of the key. */
function commit(store: Store, bucket: string, key: string, f: Files): Promise<void> {
  return inTurn(keyTurn(store, bucket, key), async () => {
    await rename(f.staged.md5, f.md5);
    await rename(f.staged.meta, f.meta);
    await rename(f.staged.object, f.object);
  });
}

const proto = FilesystemStore.prototype as unknown as Store;
const getObject = proto.getObject;
const sameKeyCopy = proto.copyObject;

proto.getObject = function (this: Store, bucket, key, options) {
  // The original opens the file before it resolves: a rename after that leaves the reader its bytes.
  return inTurn(keyTurn(this, bucket, key), () => getObject.call(this, bucket, key, options));
};

proto.putObject = async function (this: Store, object) {
  const f = filesOf(this, object.bucket, object.key);
  await pinFolder(this, object.bucket, f);
  const hash = createHash('md5');
  let size = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  const source = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
  try {
    // Resolves once the file is written and closed, not when the last chunk was handed on.
    await pipeline(source, count, createWriteStream(f.staged.object));
    const md5 = hash.digest('hex');
    await writeFile(f.staged.md5, md5);
    await writeFile(f.staged.meta, metadataJson(object.metadata));
    await commit(this, object.bucket, object.key, f);
    return { size, md5 };
  } catch (e) {
    await unstage(f);
    throw e;
  }
};

proto.copyObject = async function (this: Store, srcBucket, srcKey, destBucket, destKey, replacement) {
  const src = filesOf(this, srcBucket, srcKey);
  const f = filesOf(this, destBucket, destKey);
  // A copy onto itself only replaces metadata, which the original does.
  if (src.object === f.object) return sameKeyCopy.call(this, srcBucket, srcKey, destBucket, destKey, replacement);
  await pinFolder(this, destBucket, f);
  try {
    const meta = await inTurn(keyTurn(this, srcBucket, srcKey), async () => {
      await copyFile(src.object, f.staged.object);
      await writeFile(f.staged.md5, await readFile(src.md5));
      return readFile(src.meta, 'utf8');
    });
    await writeFile(f.staged.meta, replacement ? metadataJson(replacement) : meta);
    await commit(this, destBucket, destKey, f);
  } catch (e) {
    await unstage(f);
    throw e;
  }
  return this.getMetadata(destBucket, destKey);
};

proto.deleteObject = async function (this: Store, bucket, key) {
  const f = filesOf(this, bucket, key);
  await inTurn(keyTurn(this, bucket, key), async () => {
    for (const p of [f.object, f.md5, f.meta]) {
      await unlink(p).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
    }
  });
  // Emptied folders go, as in s3rver (its listings walk folders), in turn with PUTs creating them.
  await inTurn(folderTurn(this, bucket), async () => {
    const parts = key.split('/').slice(0, -1);
    for (; parts.length > 0; parts.pop()) {
      try {
        await rmdir(join(this.getBucketPath(bucket), ...parts));
      } catch (e) {
        if (['ENOTEMPTY', 'EEXIST', 'ENOENT'].includes((e as NodeJS.ErrnoException).code ?? '')) return;
        throw e;
      }
    }
  });
};
