import type { Command } from 'commander';
import { ConfigError, loadConfig } from '../config/load.js';
import { fail } from './fail.js';

interface DuFlags {
  config?: string;
  root?: string;
  deleteUntagged?: boolean;
  json?: boolean;
}

/** Registers `sluice du`: bytes per repository, exclusive and shared, read as the collector reads the storage. */
export function registerDuCommand(program: Command): void {
  program
    .command('du')
    .description('bytes per repository: what only it uses (what deleting it frees) and what it shares')
    .argument('[config]', 'config file')
    .option('-c, --config <file>', 'config file')
    .option('--root <dir>', 'filesystem storage root (overrides storage.filesystem.rootdirectory)')
    .option('-m, --delete-untagged', 'count only manifests a tag, index or live subject refers to (as gc -m would keep)')
    .option('--json', 'print the numbers as JSON')
    .action(async (file: string | undefined, f: DuFlags) => {
      let config;
      try {
        config = (await loadConfig(f.config ?? file, { root: f.root })).config;
      } catch (e) {
        if (e instanceof ConfigError) fail(e.message.split('\n').join('; '));
        throw e;
      }
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
