import type { Command } from 'commander';
import { fail } from './fail.js';
import { storageCommand, storageConfig, type StorageFlags } from './storage-command.js';

interface FsckFlags extends StorageFlags {
  repair?: boolean;
  sample?: string;
  full?: boolean;
  json?: boolean;
}

/** Repairs rounds at most: a repaired index may reveal a lost child, a repaired manifest a lost blob. */
const REPAIR_ROUNDS = 3;
const DEFAULT_SAMPLE = 16;

/**
 * Registers `sluice fsck`: checks links, tagged manifests and their blobs (sizes always, digests of a random
 * sample or, with `--full`, of all); with `--repair`, fetches what cache repositories lost again from their
 * upstream. Exits non-zero while problems remain.
 */
export function registerFsckCommand(program: Command): void {
  storageCommand(
    program,
    'fsck',
    'check the storage: links valid, tagged manifests and their blobs present and matching their digests',
  )
    .option('--full', 'hash every blob a tagged manifest names (default: check every size, hash a random sample)')
    .option('--sample <n>', `how many blobs to hash when not --full (default ${DEFAULT_SAMPLE})`)
    .option(
      '--repair',
      're-fetch from upstream what cache repositories lost (digests verified), and report what could not be repaired',
    )
    .option('--json', 'print the report as JSON')
    .action(async (file: string | undefined, f: FsckFlags) => {
      const sample = f.sample === undefined ? DEFAULT_SAMPLE : Number(f.sample);
      if (!Number.isSafeInteger(sample) || sample < 0) fail(`--sample: expected a whole number, not "${f.sample}"`);
      if (f.full && f.sample !== undefined) fail('give one of --full and --sample');
      const config = await storageConfig(file, f);
      if (f.repair && config.storage.maintenance?.readonly?.enabled) {
        fail('the storage is read-only (storage.maintenance.readonly.enabled): fsck --repair cannot write');
      }
      const { driverFor } = await import('../storage/driver-for.js');
      const { fsck } = await import('../gc/fsck.js');
      const { describeFsck } = await import('../gc/fsck-describe.js');
      const driver = driverFor(config);
      const { parseDuration } = await import('../config/duration.js');
      const age = config.storage.maintenance?.uploadpurging?.age ?? '168h';
      const options = {
        mode: f.full ? ('full' as const) : ('sample' as const),
        sample,
        uploadAgeMs: parseDuration(age),
      };
      let close = async (): Promise<void> => undefined;
      try {
        let report = await fsck(driver, options);
        let repairs: import('../gc/fsck-repair.js').RepairResult[] = [];
        if (f.repair) {
          const deps = await repairDeps(driver, config);
          close = () => deps.upstreams.close();
          const { repairProblems } = await import('../gc/fsck-repair.js');
          for (let round = 0; round < REPAIR_ROUNDS && report.problems.length > 0; round++) {
            const done = await repairProblems(deps, report.problems);
            repairs.push(...done);
            report = await fsck(driver, options);
            if (!done.some((r) => r.repaired)) break;
          }
        }
        // A failure a later round made moot (a link to a blob found again once its manifest was back) is not news.
        const remaining = new Set(report.problems.map((p) => `${p.kind} ${p.path}`));
        repairs = repairs.filter((r) => r.repaired || remaining.has(`${r.kind} ${r.path}`));
        const json = () => `${JSON.stringify({ ...report, ...(f.repair ? { repairs } : {}) }, null, 2)}\n`;
        process.stdout.write(f.json ? json() : describeFsck(report, f.repair ? repairs : undefined));
        if (report.problems.length > 0) process.exitCode = 1;
      } catch (e) {
        fail(`fsck failed: ${(e as Error).message}`);
      } finally {
        await close();
        (driver as { destroy?: () => void }).destroy?.();
      }
    });
}

/** What `--repair` writes with: the config's upstreams, and the stores and claims a registry would use. */
async function repairDeps(
  driver: import('../storage/driver.js').StorageDriver,
  config: import('../config/schema.js').Config,
) {
  const [{ Upstreams }, { BlobStore }, { UploadStore }, { Claims }] = await Promise.all([
    import('../upstream/upstreams.js'),
    import('../storage/blobs.js'),
    import('../storage/uploads.js'),
    import('../gc/claim.js'),
  ]);
  const blobs = new BlobStore(driver);
  return {
    driver,
    blobs,
    uploads: new UploadStore(driver, blobs, config.limits.blobbytes),
    claims: new Claims(driver),
    upstreams: new Upstreams(config.upstreams ?? {}, config.proxy),
  };
}
