import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, waitForHttp } from './clients.js';
import type { S3Request, TestS3 } from './s3.js';
import { SLUICE_BIN, type SluiceProcess } from './sluice-cli.js';

const require = createRequire(import.meta.url);

/**
 * Gives s3rver one more access key (secret = key). s3rver accepts any signature but only keys it knows, so
 * each node signs with its own key and the request log says which node sent what.
 */
export function addS3Key(key: string): void {
  const account = require('s3rver/lib/models/account.js') as { DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void } };
  account.DUMMY_ACCOUNT.createKeyPair(key, key);
}

/** The requests one node's key signed, from the server's log (presigned URLs carry the key in the query). */
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
  /** What the process has printed (its JSON log lines). */
  output(): string;
}

/**
 * Starts `sluice serve --config FILE` with `storage.s3` on the test server under `rootdirectory`, the
 * node's own access key, and `extra` merged into the config's top level (storage keys beside s3 go in
 * `storage`). Child processes, so a test can SIGKILL one as a crash would.
 */
export async function startS3Node(
  s3: TestS3,
  dir: string,
  opts: { key: string; root: string; storage?: Record<string, unknown>; extra?: Record<string, unknown>; s3?: Record<string, unknown> },
): Promise<S3Node> {
  addS3Key(opts.key);
  let lastError: unknown;
  for (let attempt = 0; attempt < 4; attempt++) {
    const port = await freePort();
    const config = {
      log: { level: 'info' },
      http: { addr: `127.0.0.1:${port}` },
      storage: { s3: s3.config(opts.root, { accesskey: opts.key, secretkey: opts.key, ...(opts.s3 ?? {}) }), delete: { enabled: true }, ...(opts.storage ?? {}) },
      ...(opts.extra ?? {}),
    };
    const file = join(dir, `node-${opts.key}-${port}.yml`);
    // JSON is YAML.
    await writeFile(file, JSON.stringify(config, null, 1));
    const child = spawn(process.execPath, [SLUICE_BIN, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<void>((res) => child.once('exit', () => res()));
    const signal = async (sig: NodeJS.Signals) => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(sig);
        await exited;
      }
    };
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitForHttp(`${url}/v2/`, child);
      return { child, url, host: `127.0.0.1:${port}`, key: opts.key, kill: () => signal('SIGKILL'), stop: () => signal('SIGTERM'), output: () => out };
    } catch (e) {
      lastError = new Error(`${(e as Error).message}\n${out}`);
      await signal('SIGKILL');
    }
  }
  throw lastError;
}
