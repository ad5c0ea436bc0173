// `sluice policy explain|check`: what the access, flow, trust and retention rules of a config decide.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../config/schema.js';
import { listRobots, RobotStore } from '../auth/robots.js';
import type { Finding, KnownPrincipals } from '../policy/index.js';
import { ACTIONS, type Target } from '../policy/types.js';
import { parseActions, parsePrincipal, parseTarget } from '../policy/explain-input.js';
import { configFrom, fail } from './fail.js';

// The config loader (zod, yaml), the policy compiler and the explainers are imported in the actions
// that use them: `sluice --help` registers these commands without loading them.

/**
 * The users and robots a config's files hold, as `checkPolicy` reads them, with the problems met on the
 * way (a missing htpasswd file keeps the registry from starting, so it is one of them).
 */
async function rosters(config: Config): Promise<{ known: KnownPrincipals; problems: string[]; warnings: string[] }> {
  const known: KnownPrincipals = {};
  const problems: string[] = [];
  const warnings: string[] = [];
  const hp = config.auth?.htpasswd?.path;
  if (hp) {
    const { HtpasswdStore } = await import('../auth/htpasswd.js');
    try {
      const store = new HtpasswdStore(hp);
      warnings.push(...store.warnings);
      const names = (await readFile(hp, 'utf8'))
        .split(/\r?\n/)
        .map((l) => l.trim().split(':')[0]!)
        .filter((n) => n && store.has(n));
      known.users = { from: `the htpasswd file ${hp}`, has: (n) => store.has(n), names };
      await store.close();
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  // An external token issuer may name any user, so no user name can be called unknown.
  if (config.auth?.token) known.users = { from: 'auth.token', has: () => true };
  const rp = config.auth?.robots?.path;
  if (rp) {
    try {
      new RobotStore(rp);
      const names = (await listRobots(rp)).map((r) => r.name);
      known.robots = { from: `the robot file ${rp}`, has: (n) => names.includes(n), names };
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  return { known, problems, warnings };
}

/** Reads a config file for `policy check`: the raw `access:` section, and the rest validated as `sluice serve` would. */
async function readForCheck(
  path: string | undefined,
): Promise<{ raw: Record<string, unknown>; config?: Config; problems: string[] }> {
  const [{ parse: parseYaml }, { ConfigError, validateConfig }] = await Promise.all([
    import('yaml'),
    import('../config/load.js'),
  ]);
  let raw: Record<string, unknown> = {};
  if (path !== undefined) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      fail(`cannot read config ${path}: ${(e as Error).message}`);
    }
    try {
      raw = (parseYaml(text) as Record<string, unknown>) ?? {};
    } catch (e) {
      fail(`config ${path} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) fail(`config ${path} must be a YAML mapping`);
  }
  // The access: section is checked on its own, so its problems name rules by number and all show at once.
  const { access: _access, ...rest } = raw;
  try {
    // The other start-up phases too (flows, trust, mirrors, address, TLS), so the check says what `serve` would.
    const { startupChecks } = await import('../registry/config-check.js');
    const { config } = validateConfig(rest, {
      ...(path !== undefined ? { baseDir: dirname(resolve(path)) } : {}),
      check: await startupChecks(rest),
    });
    return { raw, config, problems: [] };
  } catch (e) {
    if (e instanceof ConfigError) return { raw, problems: e.problems };
    throw e;
  }
}

function printFindings(findings: Finding[]): void {
  for (const f of findings) process.stdout.write(`${f.level}: ${f.message}\n`);
}

/** Registers `sluice policy explain|check`. */
export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('inspect the access policy of a config');
  policy
    .command('explain')
    .description('show which rule decides each action on a reference, and why; exits 1 when any action is denied')
    .argument('<reference>', 'repository[:tag] or repository@digest, e.g. team-a/app:1')
    .option('-c, --config <file>', 'config file with the access: section (as `sluice serve -c`)')
    .option('--user <name>', 'as this user (robot$NAME is the robot NAME, as the registry reads it)')
    .option('--robot <name>', 'as this robot')
    .option('--anonymous', 'as an anonymous caller (the default)')
    .option(
      '--group <name>',
      'as a member of this group of access.groups (repeatable; in addition to the config)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      '--action <actions>',
      `comma-separated actions (${ACTIONS.join(', ')}; * for all), or fetch alone: may the cache bring this upstream image in, or trust alone: which signatures it needs where, or retain alone: which tags retention and cache eviction keep`,
      ACTIONS.filter((a) => a !== 'list').join(','),
    )
    .option('--json', 'print the decisions as JSON')
    .action(
      async (
        ref: string,
        opts: {
          config?: string;
          user?: string;
          robot?: string;
          anonymous?: boolean;
          group?: string[];
          action: string;
          json?: boolean;
        },
      ) => {
        // `fetch` asks the flow rules (may the cache bring this upstream image in), not the access rules.
        const asked = opts.action.split(',').map((a) => a.trim());
        if (asked.includes('trust')) {
          if (asked.length > 1) fail('--action trust is answered by the trust rules: ask it alone');
          const config = await configFrom(opts.config);
          const { explainTrust } = await import('../registry/explain-fetch.js');
          let e: ReturnType<typeof explainTrust>;
          try {
            e = explainTrust(config, ref);
          } catch (err) {
            fail((err as Error).message);
          }
          process.stdout.write(opts.json ? JSON.stringify([e.json], null, 2) + '\n' : e.lines.join('\n') + '\n');
          return;
        }
        if (asked.includes('retain')) {
          if (asked.length > 1) fail('--action retain is answered by retention rules and cache eviction: ask it alone');
          const config = await configFrom(opts.config);
          const { explainRetain, printRetain } = await import('./explain-retain.js');
          const es = await Promise.resolve()
            .then(() => explainRetain(config, parseTarget(ref)))
            .catch((err: unknown) => fail((err as Error).message));
          if (es.some((e) => !e.kept)) process.exitCode = 1;
          process.stdout.write(opts.json ? JSON.stringify(es, null, 2) + '\n' : printRetain(es));
          return;
        }
        if (asked.includes('fetch')) {
          if (asked.length > 1) fail('--action fetch is answered by the flow rules: ask it alone');
          const config = await configFrom(opts.config);
          const { explainFetch, printFetch } = await import('../registry/explain-fetch.js');
          let e: ReturnType<typeof explainFetch>;
          try {
            e = explainFetch(config, ref);
          } catch (err) {
            fail((err as Error).message);
          }
          if (!e.allowed) process.exitCode = 1;
          process.stdout.write(opts.json ? JSON.stringify([e], null, 2) + '\n' : printFetch(e, config));
          return;
        }
        const actions = parseActions(opts.action);
        if (typeof actions === 'string') fail(actions);
        const principal = parsePrincipal(opts);
        if (typeof principal === 'string') fail(principal);
        let target: Target;
        try {
          target = parseTarget(ref);
        } catch (e) {
          fail((e as Error).message);
        }
        const config = await configFrom(opts.config);
        const [{ hasCredentials }, { compilePolicy, decide, enforcedPolicySpec, PolicyError }] = await Promise.all([
          import('../auth/config.js'),
          import('../policy/index.js'),
        ]);
        // The server's own policy, open registry included, so the answer is the one a client would get.
        const spec = enforcedPolicySpec(config.access, {
          hasCredentials: hasCredentials(config.auth),
          readonlyAll: config.storage.maintenance?.readonly?.enabled ?? false,
        });
        if (opts.group?.length) {
          const member =
            principal.kind === 'robot' ? `robot:${principal.name}` : principal.kind === 'user' ? principal.name : '';
          spec.groups = { ...spec.groups };
          for (const g of opts.group) {
            if (!Object.hasOwn(spec.groups, g)) {
              const defined = Object.keys(spec.groups);
              fail(
                `--group ${g}: no such group under access.groups${defined.length ? ` (groups: ${defined.join(', ')})` : ' (none is defined)'}`,
              );
            }
            spec.groups[g] = [...spec.groups[g]!, member];
          }
        }
        let compiled: ReturnType<typeof compilePolicy>;
        try {
          compiled = compilePolicy(spec);
        } catch (e) {
          if (e instanceof PolicyError) fail(`${e.message} (sluice policy check lists every problem)`);
          throw e;
        }
        if (principal.kind !== 'anonymous' && !opts.group?.length) {
          const { known } = await rosters(config);
          const roster = principal.kind === 'user' ? known.users : known.robots;
          if (roster && !roster.has(principal.name))
            process.stderr.write(
              `warning: ${principal.kind} ${principal.name} is not in ${roster.from}; the registry would refuse the login\n`,
            );
        }
        // `list` is the catalog: registry-wide, as the registry asks it, whatever the reference.
        const decisions = actions.map((action) =>
          decide(compiled, { principal, action, target: action === 'list' ? {} : target }),
        );
        if (decisions.some((d) => !d.allowed)) process.exitCode = 1;
        if (opts.json) {
          process.stdout.write(JSON.stringify(decisions, null, 2) + '\n');
          return;
        }
        const { decisionLines } = await import('../policy/explain-text.js');
        for (const d of decisions) process.stdout.write(decisionLines(d, spec.rules).join('\n') + '\n');
      },
    );
  policy
    .command('check')
    .description(
      'validate a config file: every problem in access: at once (rules by number), unreachable rules, unknown users and robots',
    )
    .argument('[file]', 'config file (same as -c/--config)')
    .option('-c, --config <file>', 'config file')
    .action(async (file: string | undefined, opts: { config?: string }) => {
      if (file !== undefined && opts.config !== undefined && file !== opts.config)
        fail('give the config file once: as an argument or with -c/--config');
      const path = file ?? opts.config;
      const [{ hasCredentials }, { checkAccessConfig }] = await Promise.all([
        import('../auth/config.js'),
        import('../policy/index.js'),
      ]);
      const { raw, config, problems } = await readForCheck(path);
      const findings: Finding[] = problems.map((message) => ({ level: 'error', message }));
      let known: KnownPrincipals | undefined;
      if (config) {
        const r = await rosters(config);
        known = r.known;
        findings.push(...r.problems.map((message): Finding => ({ level: 'error', message })));
        findings.push(...r.warnings.map((message): Finding => ({ level: 'warning', message })));
      }
      const creds = hasCredentials(
        (config?.auth ?? (raw.auth as Record<string, unknown> | undefined)) as Config['auth'],
      );
      const checked = checkAccessConfig(raw.access, { known, hasCredentials: creds });
      findings.push(...checked.findings);
      printFindings(findings);
      const errors = findings.filter((f) => f.level === 'error').length;
      const warnings = findings.length - errors;
      const name = path ?? 'config';
      const counts = `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`;
      if (errors || !checked.spec) fail(`${name}: ${counts}`);
      const n = checked.spec.rules.length;
      const rulesAre =
        raw.access && (raw.access as Record<string, unknown>).rules
          ? ''
          : creds
            ? ' (the default: authenticated users may do everything)'
            : ' (no auth configured: everyone may do everything)';
      process.stdout.write(`${name}: ${n} rule${n === 1 ? '' : 's'}${rulesAre}, ${counts}\n`);
    });
}
