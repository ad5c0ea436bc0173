import type { Command } from 'commander';
import type { Config } from '../config/schema.js';
import { fail } from './fail.js';

/** Where a storage command finds its config: Distribution's positional file, `-c`, and `--root`. */
export interface StorageFlags {
  config?: string;
  root?: string;
}

/** Adds the config file argument and the `-c`/`--root` options of a command that works on a config's storage. */
export function storageCommand(program: Command, name: string, description: string): Command {
  return program
    .command(name)
    .description(description)
    .argument('[config]', "config file (as Distribution's `registry garbage-collect CONFIG`)")
    .option('-c, --config <file>', 'config file')
    .option('--root <dir>', 'filesystem storage root (overrides storage.filesystem.rootdirectory)');
}

/** Loads the config a storage command names, or exits with the config's problems. */
export async function storageConfig(file: string | undefined, f: StorageFlags): Promise<Config> {
  // Loaded here, not at the top: `sluice --help` registers this command without reading any config.
  const { ConfigError, loadConfig } = await import('../config/load.js');
  try {
    return (await loadConfig(f.config ?? file, { root: f.root })).config;
  } catch (e) {
    if (e instanceof ConfigError) fail(e.message.split('\n').join('; '));
    throw e;
  }
}
