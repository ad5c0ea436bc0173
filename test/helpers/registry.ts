import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { buildRegistry, LISTEN_BACKLOG, type Registry } from '../../src/registry/server.js';
import type { StorageDriver } from '../../src/storage/driver.js';
import { startS3, type TestS3 } from './s3.js';

/**
 * Which storage `startRegistry` gives a registry that names none: `SLUICE_TEST_STORAGE=s3` runs every such
 * registry on one in-process S3 server per test process, so the registry tests check both drivers.
 */
export const testStorage: 'filesystem' | 's3' = process.env['SLUICE_TEST_STORAGE'] === 's3' ? 's3' : 'filesystem';

/** A registry started for one test, on 127.0.0.1 and a free port, with storage of its own (a fresh directory, or a fresh folder of the bucket). */
export interface TestRegistry extends Registry {
  url: string;
  /** `127.0.0.1:PORT`, as clients name it. */
  host: string;
  /**
   * Where the storage is: a directory on the filesystem, or under S3 the rootdirectory in the shared
   * bucket. Either way, passing it to `startRegistry` starts a second registry on the same storage.
   */
  root: string;
  /** The storage this registry runs on. */
  storage: 'filesystem' | 's3';
  /** Every object under `path` (relative to the storage root), as paths relative to `path`, read through the driver. */
  files(path?: string): Promise<string[]>;
  /** An object's size through the driver (an upload's bytes joined), or -1 when absent. */
  sizeOf(path: string): Promise<number>;
  close(): Promise<void>;
}

let sharedS3: Promise<TestS3> | undefined;

/** The test process's S3 server, started on first use and left to end with the process. */
export function testS3(): Promise<TestS3> {
  sharedS3 ??= startS3('sluice-tests').then((s) => {
    s.detach();
    return s;
  });
  return sharedS3;
}

/**
 * Skips a test that works on the storage root's files directly (layout on disk, a full or read-only
 * mount, open file handles) when the registry tests run on S3; returns true when skipped.
 */
export function filesystemOnly(t: TestContext, why: string): boolean {
  if (testStorage !== 's3') return false;
  t.skip(`filesystem-only: ${why}`);
  return true;
}

/** Walks a driver's tree: works alike on a directory and on a bucket, so layout checks need no filesystem. */
async function walk(driver: StorageDriver, dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  const at = rel ? `${dir}/${rel}` : dir;
  for (const name of (await driver.list(at)).sort()) {
    const p = rel ? `${rel}/${name}` : name;
    if ((await driver.stat(`${at}/${name}`))?.isDirectory) out.push(...(await walk(driver, dir, p)));
    else out.push(p);
  }
  return out;
}

/** Deep-merges config objects (plain objects only). */
function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)
        ? merge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** True when the test's config chooses a storage itself; the switch leaves such a registry alone. */
function namesStorage(config: Record<string, unknown>): boolean {
  const s = config['storage'] as Record<string, unknown> | undefined;
  return !!s && (s['s3'] !== undefined || s['filesystem'] !== undefined);
}

/** Starts a Sluice registry for a test; `config` is merged over a quiet default with deletion enabled. */
export async function startRegistry(config: Record<string, unknown> = {}, root?: string): Promise<TestRegistry> {
  const named = namesStorage(config);
  const onS3 = testStorage === 's3' && !named;
  let dir: string;
  let storage: Record<string, unknown>;
  if (named) {
    // The test's own storage block decides; `root` only names it for the test.
    const s = config['storage'] as { s3?: { rootdirectory?: string }; filesystem?: { rootdirectory?: string } };
    dir = root ?? s.s3?.rootdirectory ?? s.filesystem?.rootdirectory ?? '';
    storage = {};
  } else if (onS3) {
    // Each registry gets its own folder in the one bucket, so tests stay independent.
    dir = root ?? `t-${randomUUID()}`;
    storage = { s3: (await testS3()).config(dir) };
  } else {
    dir = root ?? (await mkdtemp(join(tmpdir(), 'sluice-test-')));
    storage = { filesystem: { rootdirectory: dir } };
  }
  const raw = merge(
    {
      log: { level: 'silent' },
      http: { addr: '127.0.0.1:0' },
      storage: { ...storage, delete: { enabled: true } },
    },
    config,
  );
  const { config: cfg } = validateConfig(raw);
  const reg = buildRegistry({ config: cfg, logger: false });
  const address = await reg.app.listen({ host: '127.0.0.1', port: 0, backlog: LISTEN_BACKLOG });
  const host = address.replace(/^http:\/\//, '');
  return {
    ...reg,
    url: address,
    host,
    root: dir,
    storage: reg.ctx.driver.name === 's3' ? 's3' : 'filesystem',
    files: (path = '') => walk(reg.ctx.driver, path.replace(/\/+$/, '')),
    sizeOf: async (path) => (await reg.ctx.driver.stat(path))?.size ?? -1,
    close: async () => {
      await reg.app.close();
      // The S3 driver keeps a connection pool open; a closed registry must not hold the process.
      (reg.ctx.driver as { destroy?: () => void }).destroy?.();
      if (!root && !onS3 && !named) await rm(dir, { recursive: true, force: true });
    },
  };
}
