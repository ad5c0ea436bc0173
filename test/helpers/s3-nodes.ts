import { createRequire } from 'node:module';
import { writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { S3Request, TestS3 } from './s3.js';
import { startSluiceProcess, type SluiceProcess } from './sluice-cli.js';

const require = createRequire(import.meta.url);

/**
 * Gives s3rver one more access key (secret = key). s3rver accepts any signature but only keys it knows, so
 * each node signs with its own key and the request log says which node sent what.
 */
export function addS3Key(key: string): void {
  const account = require('s3rver/lib/models/account.js') as {
    DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void };
  };
  account.DUMMY_ACCOUNT.createKeyPair(key, key);
}

/** The requests one node's key signed, from the server's log. */
export function requestsBy(s3: TestS3, key: string, since = 0): S3Request[] {
  return s3.requests.slice(since).filter((r) => r.accessKey === key);
}

/** Requests that change the bucket: anything but GET and HEAD. */
export function writesIn(requests: S3Request[]): S3Request[] {
  return requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
}

/** A `sluice serve` child process over the test S3 server, signing with its own key. */
export interface S3Node extends SluiceProcess {
  key: string;
}

/**
 * Starts `sluice serve --config FILE` with `storage.s3` on the test server under `root`, signing with
 * the node's own access key; `storage` adds keys beside s3, `config` other top-level keys. A child process, so a test can SIGKILL it as a
 * crash would.
 */
export async function startS3Node(
  s3: TestS3,
  dir: string,
  opts: {
    key: string;
    root: string;
    storage?: Record<string, unknown> /** Other top-level config keys (notifications, ...). */;
    config?: Record<string, unknown>;
  },
): Promise<S3Node> {
  addS3Key(opts.key);
  const config = {
    log: { level: 'warn' },
    ...(opts.config ?? {}),
    storage: {
      s3: s3.config(opts.root, { accesskey: opts.key, secretkey: opts.key }),
      delete: { enabled: true },
      ...(opts.storage ?? {}),
    },
  };
  const file = join(dir, `node-${opts.key}-${randomUUID()}.yml`);
  // JSON is YAML.
  await writeFile(file, JSON.stringify(config, null, 1));
  return { ...(await startSluiceProcess(undefined, { config: file })), key: opts.key };
}
