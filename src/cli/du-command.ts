import type { Command } from 'commander';
import { isRepositoryName, type RepositoryName } from '../oci/name.js';
import { fail } from './fail.js';
import { storageCommand, storageConfig, type StorageFlags } from './storage-command.js';

interface DuFlags extends StorageFlags {
  deleteUntagged?: boolean;
  json?: boolean;
  tags?: boolean;
}

const col = (n: number | string): string => String(n).padStart(14);

/**
 * Registers `sluice du`: bytes per repository, exclusive and shared, read as the collector reads the storage;
 * with a repository (or `--tags`), per tag what it names and what deleting that tag would free.
 */
export function registerDuCommand(program: Command): void {
  const about =
    'bytes per repository: what only it uses (what deleting it frees) and what it shares; per tag with REPOSITORY or --tags';
  storageCommand(program, 'du', about)
    .argument('[repository]', "list this repository's tags: the bytes each names and what deleting it would free")
    .option(
      '-m, --delete-untagged',
      'count only manifests a tag, index or live subject refers to (as gc -m would keep)',
    )
    .option('--tags', 'per tag, for every repository')
    .option('--json', 'print the numbers as JSON')
    .action(async (file: string | undefined, repository: string | undefined, f: DuFlags) => {
      // With -c, the one positional argument is the repository.
      if (f.config && file && !repository) [file, repository] = [undefined, file];
      if (repository !== undefined && !isRepositoryName(repository))
        fail(`du: invalid repository name "${repository.slice(0, 200)}"`);
      const config = await storageConfig(file, f);
      const { driverFor } = await import('../storage/driver-for.js');
      const { measureTagUsage, measureUsage } = await import('../gc/measure.js');
      const driver = driverFor(config);
      const options = { deleteUntagged: f.deleteUntagged ?? config.storage.gc?.deleteuntagged ?? false };
      try {
        if (repository !== undefined || f.tags) {
          const usage = await measureTagUsage(driver, repository ? [repository as RepositoryName] : 'all', options);
          if (repository && usage.length === 0) fail(`du: repository "${repository}" has no tags in this storage`);
          const lines = usage.map((u) => `${col(u.bytes)} ${col(u.frees)}  ${u.repository}:${u.tag}`);
          const table = `${col('BYTES')} ${col('FREES')}  TAG\n${lines.join('\n')}\n`;
          process.stdout.write(f.json ? `${JSON.stringify(usage, null, 2)}\n` : table);
          return;
        }
        const usage = await measureUsage(driver, options);
        if (f.json) process.stdout.write(`${JSON.stringify(usage, null, 2)}\n`);
        else {
          const lines = usage.map((u) => `${col(u.bytes)} ${col(u.exclusive)} ${col(u.shared)}  ${u.repository}`);
          process.stdout.write(
            `${col('BYTES')} ${col('EXCLUSIVE')} ${col('SHARED')}  REPOSITORY\n${lines.join('\n')}\n`,
          );
        }
      } catch (e) {
        fail(`du failed: ${(e as Error).message}`);
      } finally {
        (driver as { destroy?: () => void }).destroy?.();
      }
    });
}
