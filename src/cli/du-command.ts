import type { Command } from 'commander';
import { fail } from './fail.js';
import { storageCommand, storageConfig, type StorageFlags } from './storage-command.js';

interface DuFlags extends StorageFlags {
  deleteUntagged?: boolean;
  json?: boolean;
}

/** Registers `sluice du`: bytes per repository, exclusive and shared, read as the collector reads the storage. */
export function registerDuCommand(program: Command): void {
  storageCommand(program, 'du', 'bytes per repository: what only it uses (what deleting it frees) and what it shares')
    .option('-m, --delete-untagged', 'count only manifests a tag, index or live subject refers to (as gc -m would keep)')
    .option('--json', 'print the numbers as JSON')
    .action(async (file: string | undefined, f: DuFlags) => {
      const config = await storageConfig(file, f);
      const { driverFor } = await import('../storage/driver-for.js');
      const { measureUsage } = await import('../gc/measure.js');
      const driver = driverFor(config);
      try {
        const usage = await measureUsage(driver, { deleteUntagged: f.deleteUntagged ?? config.storage.gc?.deleteuntagged ?? false });
        if (f.json) process.stdout.write(`${JSON.stringify(usage, null, 2)}\n`);
        else {
          const lines = usage.map((u) => `${String(u.bytes).padStart(14)} ${String(u.exclusive).padStart(14)} ${String(u.shared).padStart(14)}  ${u.repository}`);
          process.stdout.write(`${'BYTES'.padStart(14)} ${'EXCLUSIVE'.padStart(14)} ${'SHARED'.padStart(14)}  REPOSITORY\n${lines.join('\n')}\n`);
        }
      } catch (e) {
        fail(`du failed: ${(e as Error).message}`);
      } finally {
        (driver as { destroy?: () => void }).destroy?.();
      }
    });
}
