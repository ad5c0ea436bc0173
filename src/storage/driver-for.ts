import type { StorageDriver } from './driver.js';
import { FilesystemDriver } from './filesystem.js';
import { S3Driver, type S3Options } from './s3.js';

/** The part of a config that picks the driver (storage/ reads it without importing config/). */
export interface StorageChoice {
  storage: { filesystem?: { rootdirectory?: string }; s3?: S3Options };
}

/** The storage driver a config names (the filesystem is the embedded default). */
export function driverFor(config: StorageChoice): StorageDriver {
  if (config.storage.s3) return new S3Driver(config.storage.s3);
  return new FilesystemDriver(config.storage.filesystem?.rootdirectory ?? './data');
}

/** What the start log line says of the storage: the directory, or the bucket, key prefix and endpoint. */
export function storageSummary(config: StorageChoice): Record<string, string> {
  const s3 = config.storage.s3;
  if (!s3) return { storage: 'filesystem', root: config.storage.filesystem?.rootdirectory ?? './data' };
  const prefix = (s3.rootdirectory ?? '').replace(/^\/+|\/+$/g, '');
  // Without regionendpoint the SDK goes to AWS itself, in the region given.
  const endpoint = s3.regionendpoint ?? `https://s3.${s3.region}.amazonaws.com`;
  return { storage: 's3', bucket: s3.bucket, prefix, endpoint, region: s3.region };
}
