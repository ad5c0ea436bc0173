import { Command } from 'commander';
import { ConfigError, loadConfig } from '../config/load.js';
import { registerCopyCommands } from './copy-commands.js';
import { registerSyncCommands } from './sync-commands.js';
import { registerAccessCommands } from './access-commands.js';
import { registerSignCommands } from './sign-commands.js';
import { registerPassthroughCommand } from './passthrough-command.js';
import { fail, quietOnClosedPipes } from './fail.js';


quietOnClosedPipes();
const program = new Command();
program.name('sluice').description('Container-image registry and image mover').version('0.1.0');
// A command's options come before its subcommands (`sluice sync -c A` and `sluice sync status -c B` each get theirs).
program.enablePositionalOptions();

program
  .command('serve')
  .description('run the registry (filesystem storage under ./data on 127.0.0.1:5000 by default)')
  .option('-c, --config <file>', 'YAML config file (Distribution config.yml keys are read as they are)')
  .option('--addr <host:port>', 'listen address (overrides http.addr)')
  .option('--root <dir>', 'filesystem storage root (overrides storage.filesystem.rootdirectory)')
  .action(async (opts: { config?: string; addr?: string; root?: string }) => {
    try {
      const { config, warnings } = await loadConfig(opts.config, { addr: opts.addr, root: opts.root });
      // Loaded here so that the image-moving commands do not carry the server in memory, nor it them.
      const { serve } = await import('../registry/server.js');
      let url = '';
      const reg = await serve(config, (u) => (url = u));
      for (const w of warnings) reg.app.log.warn(w);
      const root = config.storage.filesystem?.rootdirectory ?? './data';
      // The URL says https:// when http.tls is on.
      reg.app.log.info({ addr: config.http.addr, url, root }, 'sluice registry listening');
    } catch (e) {
      if (e instanceof ConfigError) fail(e.message);
      fail((e as Error).message);
    }
  });

registerCopyCommands(program);
registerSyncCommands(program);
registerSignCommands(program);
registerAccessCommands(program);
registerPassthroughCommand(program);

await program.parseAsync(process.argv);
