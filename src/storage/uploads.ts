import { createHash, randomUUID, type Hash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseDigest, type Digest } from '../oci/digest.js';
import { isRepositoryName, type RepositoryName } from '../oci/name.js';
import type { BlobStore } from './blobs.js';
import { isStorageFull, type StorageDriver } from './driver.js';
import { lockPerOwner } from './keyed-lock.js';
import { isUploadId, repoPath, uploadDataPath, uploadPath, uploadStartedAtPath, walkRepositoryDirs } from './layout.js';

/** The digests being moved into place on a storage driver by this process. */
const adopting = lockPerOwner();

export { isUploadId };

/** Why an upload step failed; the registry maps each to its OCI error. */
export class UploadError extends Error {
  constructor(
    readonly reason: 'unknown' | 'range' | 'digest' | 'size' | 'aborted' | 'too-large',
    message: string,
  ) {
    super(message);
  }
}

interface HashState {
  hash: Hash;
  size: number;
}

/**
 * Upload sessions in Distribution's `_uploads/<id>` layout. The bytes and start time are in storage,
 * so a session survives a restart and can be continued by any process; the running hash is kept in
 * memory only as a shortcut and rebuilt from the bytes when missing.
 */
export class UploadStore {
  private readonly hashes = new Map<string, HashState>();
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly driver: StorageDriver,
    private readonly blobs: BlobStore,
    private readonly maxBlobSize = Number.MAX_SAFE_INTEGER,
  ) {}

  /** Starts a session and returns its id. */
  async start(name: RepositoryName): Promise<string> {
    const id = randomUUID();
    // Not flushed: a crash that loses a session just started costs the client a new one.
    await this.driver.putContent(uploadStartedAtPath(name, id), Buffer.from(new Date().toISOString()), {
      durable: false,
    });
    await this.driver.putContent(uploadDataPath(name, id), new Uint8Array(), { durable: false });
    this.hashes.set(`${name}/${id}`, { hash: createHash('sha256'), size: 0 });
    return id;
  }

  /** Bytes received so far, or null when there is no such session. */
  async size(name: RepositoryName, id: string): Promise<number | null> {
    if (!isUploadId(id)) return null;
    if (!(await this.driver.stat(uploadStartedAtPath(name, id)))) return null;
    const info = await this.driver.stat(uploadDataPath(name, id));
    return info ? info.size : null;
  }

  /** When a session began (from its `startedat` record), or null when unknown. */
  async startedAt(name: RepositoryName, id: string): Promise<Date | null> {
    if (!isUploadId(id)) return null;
    const b = await this.driver.getContent(uploadStartedAtPath(name, id));
    const t = b ? Date.parse(b.toString('utf8').trim()) : NaN;
    return Number.isNaN(t) ? null : new Date(t);
  }

  /** Runs one operation on a session at a time, so concurrent PATCHes cannot interleave bytes. */
  private async exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    this.locks.set(key, run);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === run) this.locks.delete(key);
    }
  }

  /**
   * Appends a chunk. `expectedStart` (from Content-Range) must equal the bytes stored so far;
   * `expectedLength` (Content-Length) must match what arrives. On any failure the session is left
   * exactly as it was before the chunk.
   */
  append(
    name: RepositoryName,
    id: string,
    body: Readable,
    expectedStart?: number,
    expectedLength?: number,
  ): Promise<number> {
    const key = `${name}/${id}`;
    return this.exclusive(key, async () => {
      const current = await this.size(name, id);
      if (current === null) throw new UploadError('unknown', `upload ${id} is not known`);
      if (expectedStart !== undefined && expectedStart !== current) {
        throw new UploadError('range', `chunk starts at ${expectedStart} but ${current} bytes are stored`);
      }
      let state = this.hashes.get(key);
      if (state && state.size !== current) state = undefined;
      const before = state ? state.hash.copy() : undefined;
      const writer = await this.driver.writer(uploadDataPath(name, id));
      let received = 0;
      const limit = this.maxBlobSize;
      const hashing = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          received += chunk.length;
          if (current + received > limit)
            return cb(new UploadError('too-large', `blob exceeds the limit of ${limit} bytes`));
          state?.hash.update(chunk);
          cb(null, chunk);
        },
      });
      try {
        await pipeline(body, hashing, writer.stream);
        if (expectedLength !== undefined && received !== expectedLength) {
          throw new UploadError('size', `Content-Length was ${expectedLength} but ${received} bytes arrived`);
        }
        if (!body.readableEnded && (body as { aborted?: boolean }).aborted)
          throw new UploadError('aborted', 'client went away');
        await writer.commit();
      } catch (e) {
        await writer.cancel();
        if (state && before) this.hashes.set(key, { hash: before, size: current });
        else this.hashes.delete(key);
        // A full disk is the storage's fault, not the upload's: it must reach the client as that.
        if (e instanceof UploadError || isStorageFull(e)) throw e;
        throw new UploadError('aborted', `upload chunk failed: ${(e as Error).message}`);
      }
      const size = current + received;
      if (state) {
        state.size = size;
        this.hashes.set(key, state);
      }
      return size;
    });
  }

  /** Verifies the session's bytes against `expected`, moves them into the blob store, ends the session. */
  finish(name: RepositoryName, id: string, expected: Digest): Promise<number> {
    const key = `${name}/${id}`;
    return this.exclusive(key, async () => {
      const size = await this.size(name, id);
      if (size === null) throw new UploadError('unknown', `upload ${id} is not known`);
      const { algorithm } = parseDigest(expected);
      let actual: string;
      const state = this.hashes.get(key);
      if (state && state.size === size && algorithm === 'sha256') {
        actual = `sha256:${state.hash.digest('hex')}`;
      } else {
        // A restarted or other process continues here: rebuild the hash from the stored bytes.
        const h = createHash(algorithm);
        if (size > 0) {
          const r = await this.driver.reader(uploadDataPath(name, id));
          for await (const chunk of r) h.update(chunk as Buffer);
        }
        actual = `${algorithm}:${h.digest('hex')}`;
      }
      this.hashes.delete(key);
      if (actual !== expected) {
        throw new UploadError('digest', `the uploaded content has digest ${actual}, not ${expected}`);
      }
      // Sessions of one digest finishing at once take turns, so that the later ones find the blob in place
      // instead of each writing it again (on S3 a server-side copy per push, into the same key at once).
      await adopting(this.driver).run([expected], async () => {
        if ((await this.blobs.size(expected)) !== size) await this.blobs.adopt(uploadDataPath(name, id), expected);
      });
      await this.driver.delete(uploadPath(name, id));
      return size;
    });
  }

  /**
   * Deletes sessions that began before `before` in every repository, as Distribution's upload
   * purging does (a session without a readable start time counts as old). Returns `repo/id` of each.
   */
  async purge(before: Date, dryRun = false): Promise<string[]> {
    const purged: string[] = [];
    await walkRepositoryDirs(this.driver, async (rel, children) => {
      // A folder no valid name leads to was not written by a registry: it is left alone.
      if (!children.includes('_uploads') || !isRepositoryName(rel)) return;
      const name = rel;
      for (const id of await this.driver.list(`${repoPath(name)}/_uploads`)) {
        if (!isUploadId(id)) continue;
        const started = await this.startedAt(name, id);
        if (started && started >= before) continue;
        purged.push(`${rel}/${id}`);
        if (dryRun) continue;
        this.hashes.delete(`${rel}/${id}`);
        await this.driver.delete(uploadPath(name, id));
      }
    });
    return purged;
  }

  /** Ends a session whose bytes someone else moved or removed (a cache fill): forgets its running hash and deletes its folder. */
  async discard(name: RepositoryName, id: string): Promise<void> {
    this.hashes.delete(`${name}/${id}`);
    await this.driver.delete(uploadPath(name, id));
  }

  /** Cancels a session and deletes its bytes; false when it did not exist. */
  async cancel(name: RepositoryName, id: string): Promise<boolean> {
    if ((await this.size(name, id)) === null) return false;
    this.hashes.delete(`${name}/${id}`);
    await this.driver.delete(uploadPath(name, id));
    return true;
  }
}
