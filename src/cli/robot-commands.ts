// `sluice robot`: create, list and delete robot accounts.
import type { Command } from 'commander';
import { createRobot, deleteRobot, listRobots, parseExpiry, RobotStore } from '../auth/robots.js';
import { configFrom, fail, oneLine } from './fail.js';

async function robotsPath(opts: { file?: string; config?: string }): Promise<string> {
  if (opts.file !== undefined && opts.config !== undefined)
    fail('give the robot file with --file or a config with -c/--config, not both');
  if (opts.file !== undefined) {
    if (!opts.file) fail('--file needs a path');
    return opts.file;
  }
  const config = await configFrom(opts.config);
  const p = config.auth?.robots?.path;
  if (!p) fail(`no robot file: give --file or set auth.robots.path in ${opts.config ?? 'a config (-c/--config)'}`);
  return p;
}

/** Registers `sluice robot create|list|delete`. */
export function registerRobotCommands(program: Command): void {
  const robot = program.command('robot').description('robot accounts: long random tokens, stored only as hashes');
  robot
    .command('create')
    .description('create a robot and print its token once (log in as robot$NAME with the token as password)')
    .argument('<name>', 'robot name (lower case, digits, . _ -)')
    .option('-c, --config <file>', 'config file naming auth.robots.path')
    .option('--file <path>', 'the robot file (instead of the config)')
    .option('--expires <when>', 'expiry: a duration such as 30d or 12h, or a date')
    .action(
      oneLine(async (name: string, opts: { config?: string; file?: string; expires?: string }) => {
        const expires = opts.expires !== undefined ? parseExpiry(opts.expires) : undefined;
        if (expires && expires.getTime() <= Date.now()) throw new Error(`--expires ${opts.expires} is in the past`);
        const path = await robotsPath(opts);
        const { token, record } = await createRobot(path, name, expires);
        process.stderr.write(
          `robot ${record.name} created${record.expires ? `, expires ${record.expires}` : ''}; user name robot$${record.name}; the token is shown only now:\n`,
        );
        process.stdout.write(`${token}\n`);
      }),
    );
  robot
    .command('list')
    .description('list robots (names and dates; never tokens)')
    .option('-c, --config <file>', 'config file naming auth.robots.path')
    .option('--file <path>', 'the robot file (instead of the config)')
    .action(
      oneLine(async (opts: { config?: string; file?: string }) => {
        const path = await robotsPath(opts);
        // The store names the config key and the file when the file is broken.
        new RobotStore(path);
        for (const r of await listRobots(path)) {
          process.stdout.write(`${r.name}\tcreated ${r.created}${r.expires ? `\texpires ${r.expires}` : ''}\n`);
        }
      }),
    );
  robot
    .command('delete')
    .description('delete a robot; its token stops working')
    .argument('<name>', 'robot name')
    .option('-c, --config <file>', 'config file naming auth.robots.path')
    .option('--file <path>', 'the robot file (instead of the config)')
    .action(
      oneLine(async (name: string, opts: { config?: string; file?: string }) => {
        const path = await robotsPath(opts);
        new RobotStore(path);
        if (!(await deleteRobot(path, name))) throw new Error(`no robot named ${name} in ${path}`);
      }),
    );
}
