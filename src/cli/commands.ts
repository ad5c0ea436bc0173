import type { Command } from 'commander';
import { fail } from './fail.js';

// The top-level commands and where each is defined, so main.ts can load only the one a run names and a test
// can build the whole program to check the help text main.ts prints without it.

/** Adds one command (or a group sharing a module) to the program. */
export type Register = (program: Command) => void;

/**
 * Where each top-level command is defined. A run loads only the module of the command it names, so
 * `sluice sync` does not compile the server, the access tools or the signing code (start-up is most of
 * a no-change re-sync's time); help, a bad command name or a bare `sluice` load them all, which is cheap:
 * a command module imports only commander and small helpers at its top, and its action the rest.
 */
export const COMMANDS: Record<string, () => Promise<Register>> = {
  serve: async () => registerServe,
  copy: async () => (await import('./copy-commands.js')).registerCopyCommands,
  inspect: async () => (await import('./copy-commands.js')).registerCopyCommands,
  tags: async () => (await import('./copy-commands.js')).registerCopyCommands,
  sync: async () => (await import('./sync-commands.js')).registerSyncCommands,
  key: async () => (await import('./sign-commands.js')).registerSignCommands,
  sign: async () => (await import('./sign-commands.js')).registerSignCommands,
  verify: async () => (await import('./sign-commands.js')).registerSignCommands,
  robot: async () => (await import('./robot-commands.js')).registerRobotCommands,
  policy: async () => (await import('./policy-commands.js')).registerPolicyCommands,
  passthrough: async () => (await import('./passthrough-command.js')).registerPassthroughCommand,
  gc: async () => (await import('./gc-command.js')).registerGcCommand,
  du: async () => (await import('./du-command.js')).registerDuCommand,
  fsck: async () => (await import('./fsck-command.js')).registerFsckCommand,
  events: async () => (await import('./events-command.js')).registerEventsCommand,
};

/** Registers `sluice serve`: the registry itself, loaded only when it runs. */
function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the registry (filesystem storage under ./data on 127.0.0.1:5000 by default)')
    .option('-c, --config <file>', 'YAML config file (Distribution config.yml keys are read as they are)')
    .option('--addr <host:port>', 'listen address (overrides http.addr)')
    .option('--root <dir>', 'filesystem storage root (overrides storage.filesystem.rootdirectory)')
    .action(async (opts: { config?: string; addr?: string; root?: string }) => {
      try {
        const [{ loadConfig }, { startupChecks }] = await Promise.all([
          import('../config/load.js'),
          import('../registry/config-check.js'),
        ]);
        // Every phase's problems in one error: the schema's, then flows, access, trust, mirrors, address, TLS.
        const { config, warnings } = await loadConfig(opts.config, {
          addr: opts.addr,
          root: opts.root,
          loadCheck: startupChecks,
        });
        const { serve } = await import('../registry/server.js');
        let url = '';
        const reg = await serve(config, (u) => (url = u));
        for (const w of warnings) reg.app.log.warn(w);
        const { storageSummary } = await import('../storage/driver-for.js');
        // The URL says https:// when http.tls is on.
        reg.app.log.info({ addr: config.http.addr, url, ...storageSummary(config) }, 'sluice registry listening');
      } catch (e) {
        fail((e as Error).message);
      }
    });
}

/** The program with the commands `names` names (every command when none is), as the CLI runs it. */
export async function buildProgram(version: string, names: string[] = []): Promise<Command> {
  const { Command: CommandClass } = await import('commander');
  const program = new CommandClass();
  program.name('sluice').description('Container-image registry and image mover').version(version);
  // A command's options come before its subcommands (`sluice sync -c A` and `sluice sync status -c B` each get theirs).
  program.enablePositionalOptions();
  const loaders = names.length ? names.map((n) => COMMANDS[n]!) : Object.values(COMMANDS);
  // Several names share a module: each registers once.
  const registered = new Set<Register>();
  for (const register of await Promise.all(loaders.map((l) => l()))) {
    if (registered.has(register)) continue;
    registered.add(register);
    register(program);
  }
  return program;
}
