import type { Command } from 'commander';
import { parseDuration } from '../config/duration.js';
import { fail } from './fail.js';
import { storageCommand, storageConfig, type StorageFlags } from './storage-command.js';

interface GcFlags extends StorageFlags {
  dryRun?: boolean;
  deleteUntagged?: boolean;
  grace?: string;
  json?: boolean;
}

const log = {
  info: (o: object, msg: string) => {
    if ((o as { gc?: string }).gc === 'delete') process.stderr.write(`${msg}: ${JSON.stringify(o)}\n`);
  },
  warn: (o: object, msg: string) => process.stderr.write(`warning: ${msg} ${JSON.stringify(o)}\n`),
};

/**
 * Registers `sluice gc`: the collector's plan and sweep from the command line, with Distribution's
 * `registry garbage-collect` flags (`-d/--dry-run`, `-m/--delete-untagged`, the config file as argument).
 */
export function registerGcCommand(program: Command): void {
  storageCommand(
    program,
    'gc',
    'collect garbage in the storage a config names: unused blobs, and with -m untagged manifests (online: two passes apart by the grace)',
  )
    .option('-d, --dry-run', 'print what would be deleted and change nothing')
    .option('-m, --delete-untagged', 'also delete manifests no tag, index or live subject refers to')
    .option(
      '--grace <duration>',
      'how long an object stays unused before deletion (storage.gc.grace, default 24h); 0 deletes now, for a registry that is stopped',
    )
    .option('--json', 'print the report as JSON')
    .action(async (file: string | undefined, f: GcFlags) => {
      const config = await storageConfig(file, f);
      if (config.storage.maintenance?.readonly?.enabled && !f.dryRun) {
        fail('the storage is read-only (storage.maintenance.readonly.enabled): gc only runs with --dry-run');
      }
      let graceMs: number;
      try {
        graceMs = parseDuration(f.grace ?? config.storage.gc?.grace ?? '24h');
      } catch (e) {
        fail(`--grace: ${(e as Error).message}`);
      }
      const { driverFor } = await import('../storage/driver-for.js');
      const { Collector } = await import('../gc/collector.js');
      const { runPass } = await import('../gc/run.js');
      const { describeReport } = await import('../gc/describe.js');
      const { lifecycleOf } = await import('../gc/lifecycle.js');
      let lifecycle: ReturnType<typeof lifecycleOf>;
      try {
        lifecycle = lifecycleOf(config);
      } catch (e) {
        fail((e as Error).message);
      }
      const driver = driverFor(config);
      const collector = new Collector(driver);
      const options = {
        graceMs,
        deleteUntagged: f.deleteUntagged ?? config.storage.gc?.deleteuntagged ?? false,
        dryRun: f.dryRun ?? false,
        role: config.storage.gc?.collector ?? ('auto' as const),
        log,
        ...(lifecycle ? { lifecycle } : {}),
      };
      try {
        let report = await runPass(driver, collector, options);
        // With no grace, what this pass recorded is due at once: the second pass deletes it, as Distribution's does.
        if (!('refused' in report) && graceMs === 0 && !options.dryRun)
          report = await runPass(driver, collector, options);
        if ('refused' in report) fail(`gc not run: ${report.refused}`);
        process.stdout.write(f.json ? `${JSON.stringify(report, null, 2)}\n` : describeReport(report, options.dryRun));
      } catch (e) {
        fail(`gc failed: ${(e as Error).message}`);
      } finally {
        (driver as { destroy?: () => void }).destroy?.();
      }
    });
}
