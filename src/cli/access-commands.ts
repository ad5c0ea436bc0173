import type { Command } from 'commander';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createRobot, deleteRobot, listRobots, parseExpiry } from '../auth/robots.js';
import { isDigest } from '../oci/digest.js';
import { isRepositoryName } from '../oci/name.js';
import { ACTIONS, checkPolicy, compilePolicy, decide, isAction, policySpecFrom, PolicyError, ruleLabel, type Action, type Principal, type Target } from '../policy/index.js';
import { fail } from './fail.js';


async function configFrom(file: string | undefined): Promise<Config> {
  try {
    return (await loadConfig(file)).config;
  } catch (e) {
    fail((e as Error).message);
  }
}

/** Splits `repo[:tag][@digest]` as the registry names it (no registry host is added). */
export function parseTarget(text: string): Target {
  const t: Target = {};
  let rest = text;
  const at = rest.indexOf('@');
  if (at >= 0) {
    t.digest = rest.slice(at + 1);
    if (!isDigest(t.digest)) throw new Error(`"${t.digest}" is not a digest`);
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    t.tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (!isRepositoryName(rest)) throw new Error(`"${rest}" is not a repository name`);
  t.repository = rest;
  return t;
}

async function robotsPath(opts: { file?: string; config?: string }): Promise<string> {
  if (opts.file) return opts.file;
  const config = await configFrom(opts.config);
  const p = config.auth?.robots?.path;
  if (!p) fail('no robot file: give --file or set auth.robots.path in the config');
  return p;
}

/** Registers `sluice robot …` and `sluice policy …`. */
export function registerAccessCommands(program: Command): void {
  const robot = program.command('robot').description('robot accounts: long random tokens, stored only as hashes');
  robot
    .command('create')
    .description('create a robot and print its token once (log in as robot$NAME with the token as password)')
    .argument('<name>', 'robot name (lower case, digits, . _ -)')
    .option('-c, --config <file>', 'config file naming auth.robots.path')
    .option('--file <path>', 'the robot file (instead of the config)')
    .option('--expires <when>', 'expiry: a duration such as 30d or 12h, or a date')
    .action(async (name: string, opts: { config?: string; file?: string; expires?: string }) => {
      try {
        const path = await robotsPath(opts);
        const expires = opts.expires ? parseExpiry(opts.expires) : undefined;
        const { token, record } = await createRobot(path, name, expires);
        process.stderr.write(`robot ${record.name} created${record.expires ? `, expires ${record.expires}` : ''}; user name robot$${record.name}; the token is shown only now:\n`);
        process.stdout.write(`${token}\n`);
      } catch (e) {
        fail((e as Error).message);
      }
    });
  robot
    .command('list')
    .description('list robots (names and dates; never tokens)')
    .option('-c, --config <file>', 'config file naming auth.robots.path')
    .option('--file <path>', 'the robot file')
    .action(async (opts: { config?: string; file?: string }) => {
      for (const r of await listRobots(await robotsPath(opts))) {
        process.stdout.write(`${r.name}\tcreated ${r.created}${r.expires ? `\texpires ${r.expires}` : ''}\n`);
      }
    });
  robot
    .command('delete')
    .description('delete a robot; its token stops working')
    .argument('<name>')
    .option('-c, --config <file>', 'config file naming auth.robots.path')
    .option('--file <path>', 'the robot file')
    .action(async (name: string, opts: { config?: string; file?: string }) => {
      if (!(await deleteRobot(await robotsPath(opts), name))) fail(`no robot named ${name}`);
    });

  const policy = program.command('policy').description('inspect the access policy of a config');
  policy
    .command('explain')
    .description('show which rule decides an action on a reference, and why')
    .argument('<reference>', 'repository[:tag][@digest], e.g. team-a/app:1')
    .option('-c, --config <file>', 'config file with the access: section')
    .option('--user <name>', 'as this user')
    .option('--robot <name>', 'as this robot')
    .option('--anonymous', 'as an anonymous caller')
    .option('--group <name>', 'as a member of this group (repeatable; in addition to the config)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--action <actions>', `comma-separated actions (${ACTIONS.join(', ')})`, ACTIONS.filter((a) => a !== 'list').join(','))
    .option('--json', 'print the decisions as JSON')
    .action(async (ref: string, opts: { config?: string; user?: string; robot?: string; anonymous?: boolean; group?: string[]; action: string; json?: boolean }) => {
      const config = await configFrom(opts.config);
      let target: Target;
      try {
        target = parseTarget(ref);
      } catch (e) {
        fail((e as Error).message);
      }
      const chosen = [opts.user, opts.robot, opts.anonymous].filter(Boolean).length;
      if (chosen > 1) fail('give one of --user, --robot, --anonymous');
      const principal: Principal = opts.robot
        ? { kind: 'robot', name: opts.robot }
        : opts.user || opts.group
          ? { kind: 'user', name: opts.user ?? 'someone' }
          : { kind: 'anonymous' };
      const actions = opts.action.split(',').map((a) => a.trim());
      const bad = actions.filter((a) => !isAction(a));
      if (bad.length) fail(`unknown action ${bad.join(', ')}; actions are ${ACTIONS.join(', ')}`);
      const spec = policySpecFrom(config.access, config.storage.maintenance?.readonly?.enabled ?? false);
      if (opts.group?.length) {
        if (principal.kind === 'anonymous') fail('--group needs --user or --robot');
        const member = principal.kind === 'robot' ? `robot:${principal.name}` : principal.name;
        spec.groups = { ...spec.groups };
        for (const g of opts.group) spec.groups[g] = [...(spec.groups[g] ?? []), member];
      }
      let compiled;
      try {
        compiled = compilePolicy(spec);
      } catch (e) {
        if (e instanceof PolicyError) fail(e.message);
        throw e;
      }
      const decisions = (actions as Action[]).map((action) => decide(compiled, { principal, action, target }));
      if (opts.json) {
        process.stdout.write(JSON.stringify(decisions, null, 2) + '\n');
        return;
      }
      for (const d of decisions) {
        const rule = d.rule !== undefined ? spec.rules[d.rule - 1]! : undefined;
        process.stdout.write(`${d.action}: ${d.allowed ? 'ALLOWED' : 'DENIED'}\n`);
        if (rule) {
          process.stdout.write(`  rule:    ${ruleLabel(d.rule!, rule)}: repos [${rule.repos.join(', ')}] who [${rule.who.join(', ')}]`);
          process.stdout.write(`${rule.allow.length ? ` allow [${rule.allow.join(', ')}]` : ''}${rule.deny.length ? ` deny [${rule.deny.join(', ')}]` : ''}\n`);
        }
        if (d.pattern) process.stdout.write(`  pattern: ${d.pattern}\n`);
        if (d.who) process.stdout.write(`  who:     ${d.who}\n`);
        process.stdout.write(`  reason:  ${d.reason}\n`);
      }
    });
  policy
    .command('check')
    .description('validate a config file and report unknown sets or groups and unreachable rules')
    .option('-c, --config <file>', 'config file')
    .argument('[file]', 'config file (same as --config)')
    .action(async (file: string | undefined, opts: { config?: string }) => {
      const path = file ?? opts.config;
      let config: Config;
      let warnings: string[];
      try {
        ({ config, warnings } = await loadConfig(path, {}, {}));
      } catch (e) {
        fail(e instanceof ConfigError ? e.message : (e as Error).message);
      }
      for (const w of warnings) process.stdout.write(`warning: ${w}\n`);
      const spec = policySpecFrom(config.access);
      const findings = checkPolicy(spec);
      for (const f of findings) process.stdout.write(`${f.level}: ${f.message}\n`);
      const errors = findings.filter((f) => f.level === 'error').length;
      if (errors) fail(`${path ?? 'config'}: ${errors} error(s) in access:`);
      const n = spec.rules.length;
      process.stdout.write(`${path ?? 'config'}: ${n} rule${n === 1 ? '' : 's'}${config.access?.rules ? '' : ' (the default: authenticated users may do everything)'}, ${findings.length} warning${findings.length === 1 ? '' : 's'}\n`);
    });
}
