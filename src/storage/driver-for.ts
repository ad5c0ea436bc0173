import type { Config } from '../config/schema.js';
import type { StorageDriver } from './driver.js';
import { FilesystemDriver } from './filesystem.js';
import { S3Driver } from './s3.js';

/** The storage driver a config names (the filesystem is the embedded default). */
export function driverFor(config: Config): StorageDriver {
  if (config.storage.s3) return new S3Driver(config.storage.s3);
  return new FilesystemDriver(config.storage.filesystem?.rootdirectory ?? './data');
}
