import { existsSync } from 'node:fs';

/** An S3 key pair of the test Swift (tempauth user `account:user`, its password as the secret). */
export interface SwiftKey {
  accesskey: string;
  secretkey: string;
}

/** A one-replica OpenStack Swift with s3api started for a test file: SigV4 checked, per-user access. */
export interface TestSwift {
  endpoint: string;
  bucket: string;
  /** May read and write the bucket (an account admin). */
  builder: SwiftKey;
  /** May only read and list the bucket (a container read ACL). */
  reader: SwiftKey;
  /** A `storage.s3` block for this server. */
  config(rootdirectory: string, key: SwiftKey, extra?: Record<string, unknown>): Record<string, unknown>;
  close(): Promise<void>;
}

/** What scripts/s3-dev.mjs exports, as far as the tests use it. */
interface SwiftDev {
  KEYS: { builder: SwiftKey; reader: SwiftKey };
  startSwiftS3(opts: { bucket?: string }): Promise<{
    endpoint: string;
    bucket: string;
    storage(key: SwiftKey, rootdirectory: string): Record<string, unknown>;
    close(): Promise<void>;
  }>;
}

/** Whether Debian's swift servers (with s3api) and memcached (tempauth keeps tokens there) are installed. */
export function hasSwift(): boolean {
  return [
    '/usr/bin/swift-proxy-server',
    '/usr/bin/swift-object-server',
    '/usr/bin/memcached',
    '/usr/bin/python3',
  ].every((p) => existsSync(p));
}

/**
 * Starts Swift with s3api the way users do, by scripts/s3-dev.mjs (the one source of its configuration), with
 * the bucket created, the builder an account admin and the reader granted read and list on the bucket.
 */
export async function startSwift(bucket = 'reg'): Promise<TestSwift> {
  // The script is plain JavaScript outside the compiled tree: found from dist/test/helpers at run time.
  const dev = (await import(new URL('../../../scripts/s3-dev.mjs', import.meta.url).href)) as SwiftDev;
  const s = await dev.startSwiftS3({ bucket });
  return {
    endpoint: s.endpoint,
    bucket: s.bucket,
    builder: dev.KEYS.builder,
    reader: dev.KEYS.reader,
    config: (rootdirectory, key, extra = {}) => ({
      ...s.storage(key, rootdirectory),
      v4auth: true,
      chunksize: 5 << 20,
      ...extra,
    }),
    close: () => s.close(),
  };
}
