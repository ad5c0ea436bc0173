import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../config/schema.js';
import type { MirrorJob, PlanStep } from '../sync/job.js';
import type { RunSummary } from '../sync/state.js';
import { fail } from './fail.js';
import { addBoolFlag, positiveValue, sluiceErrors } from './option-values.js';

interface SyncFlags {
  config?: string;
  job?: string[];
  dryRun?: boolean;
  json?: boolean;
  src?: string;
  dest?: string;
  destCreds?: string;
  destTlsVerify?: boolean;
  state?: string;
  scoped?: boolean;
  parallelJobs?: number;
}

const quietLog = {
  info: () => undefined,
  warn: (_o: object, msg: string) => process.stderr.write(`warning: ${msg}\n`),
};

/** The config `sluice sync` runs with: the given file, or (skopeo's YAML) upstreams and jobs made from it. */
async function syncConfig(f: SyncFlags, file: string | undefined): Promise<Config> {
  // Loaded when a sync runs, not when `sluice --help` registers the command.
  const { ConfigError, loadConfig, validateConfig } = await import('../config/load.js');
  if (f.src === undefined) {
    if (file !== undefined) fail(`unexpected argument ${file}: a YAML file goes with --src yaml`);
    if (f.dest !== undefined) fail("--dest goes with --src yaml FILE (a config file names each job's `to:`)");
    try {
      return (await loadConfig(f.config)).config;
    } catch (e) {
      if (e instanceof ConfigError) fail(e.message.split('\n').join('; '));
      throw e;
    }
  }
  if (f.src !== 'yaml') fail(`--src ${f.src}: only yaml is read (skopeo sync's YAML): --src yaml FILE --dest REF`);
  if (!file) fail('--src yaml needs the YAML file: --src yaml FILE --dest REF');
  if (!f.dest) fail('--src yaml needs --dest: a transport reference prefix such as docker://HOST/PREFIX or oci:DIR');
  const { readSkopeoYaml } = await import('../sync/skopeo-yaml.js');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    fail(`cannot read ${file}: ${(e as Error).message}`);
  }
  let parsed: ReturnType<typeof readSkopeoYaml>;
  try {
    parsed = readSkopeoYaml(text, file, f.scoped ?? false);
  } catch (e) {
    fail((e as Error).message);
  }
  const base = f.config ? (await loadConfig(f.config)).config : undefined;
  const raw: Record<string, unknown> = {
    storage: { filesystem: { rootdirectory: resolve(f.state ?? '.sluice-sync') } },
    upstreams: { ...parsed.upstreams, ...(base?.upstreams ?? {}) },
    // The YAML lists what to copy; a config given beside it keeps its flows in force.
    flows: base?.flows ?? [{ name: 'skopeo sync YAML', images: ['**'] }],
    mirrors: parsed.jobs.map((j) => ({ ...j, to: f.dest })),
  };
  try {
    return validateConfig(raw).config;
  } catch (e) {
    fail((e as Error).message.split('\n').join('; '));
  }
}

/** Output of several writers in turn: writer i's text goes out once writers 0..i-1 have ended, as it comes after that. */
function orderedOutput(
  n: number,
  write: (text: string) => void,
): { write(i: number, text: string): void; end(i: number): void } {
  const held: string[][] = Array.from({ length: n }, () => []);
  const ended: boolean[] = new Array<boolean>(n).fill(false);
  let head = 0;
  return {
    write(i, text) {
      if (i === head) write(text);
      else held[i]!.push(text);
    },
    end(i) {
      ended[i] = true;
      while (head < n && ended[head]) {
        head++;
        if (head < n) for (const t of held[head]!.splice(0)) write(t);
      }
    },
  };
}

function stepLine(s: PlanStep): string {
  const what = `${s.image}${s.tag ? `:${s.tag}` : ''}${!s.tag && s.digest ? `@${s.digest}` : ''}`;
  return `${s.action.padEnd(9)} ${what}${s.destination ? ` -> ${s.destination}` : ''}  (${s.reason})`;
}

/** Registers `sluice sync` (run mirror jobs once) and `sluice sync status`. */
export function registerSyncCommands(program: Command): void {
  const sync = program
    .command('sync')
    .description(
      "run mirror jobs once (the config's mirrors:, or skopeo sync's YAML with --src yaml FILE --dest REF); exits 1 when a job failed",
    )
    .option('-c, --config <file>', 'config file with upstreams:, flows: and mirrors:')
    .option('--job <name>', 'run only this job (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--dry-run', 'print the plan (what would be copied, moved, pruned, and why) and change nothing')
    .option('--json', 'print the run summaries as JSON')
    .option(
      '--parallel-jobs <n>',
      "jobs run at once; each job's lines are still printed together, in job order",
      positiveValue,
      4,
    )
    .argument('[file]', "with --src yaml: skopeo sync's YAML file")
    .option('--src <kind>', "yaml: read the YAML file given as argument (skopeo sync's format) instead of mirrors:")
    .option('--dest <ref>', 'with --src yaml: where images go (docker://HOST/PREFIX, oci:DIR)')
    .option('--dest-creds <user:password>', 'credentials for --dest')
    .option(
      '--scoped',
      'with --src yaml: name copies by registry host and path, as skopeo sync --scoped (default: the last path segment)',
    )
    .option('--state <dir>', 'with --src yaml: where the job state (last digests) is kept (default ./.sluice-sync)');
  addBoolFlag(sync, '--dest-tls-verify', 'verify --dest TLS; false also allows plain HTTP');
  // `sluice sync status -c FILE`: options after the subcommand belong to it, not to `sync`.
  sync.enablePositionalOptions();
  sluiceErrors(sync);
  sync.action(async (file: string | undefined, f: SyncFlags) => {
    const config = await syncConfig(f, file);
    if (!config.mirrors?.length) fail('no mirror jobs: the config has no mirrors: section');
    // Only storage, upstreams, transports and the copy engine: not the server, its metrics or the cache.
    const [
      { driverFor },
      { BlobStore },
      { UploadStore },
      { RepositoryStore },
      { buildMirrorJobs },
      { RegistryPool },
      progressKinds,
    ] = await Promise.all([
      import('../storage/driver-for.js'),
      import('../storage/blobs.js'),
      import('../storage/uploads.js'),
      import('../storage/repository.js'),
      import('../sync/setup.js'),
      import('../transport/registry-client.js'),
      f.json || f.dryRun ? undefined : import('../sync/progress.js'),
    ]);
    const trust = config.trust ? (await import('../registry/trust-setup.js')).buildTrust(config) : undefined;
    const driver = driverFor(config);
    const blobs = new BlobStore(driver);
    const uploads = new UploadStore(driver, blobs, config.limits.blobbytes);
    const claims = new (await import('../gc/claim.js')).Claims(driver);
    // One set of connections for every job of the run: one ping and kept-alive connections per registry.
    const pool = new RegistryPool();
    let jobs: MirrorJob[];
    try {
      jobs = buildMirrorJobs(
        {
          driver,
          blobs,
          uploads,
          repo: (name) => new RepositoryStore(driver, blobs, name),
          // A live server may be collecting this storage: the job claims what it writes, as the server's writers do.
          claim: (digests) => claims.claim(digests),
          log: quietLog,
          pool,
          ...(trust ? { trust } : {}),
          destination: {
            ...(f.destCreds ? { creds: f.destCreds } : {}),
            ...(f.destTlsVerify !== undefined ? { tlsVerify: f.destTlsVerify } : {}),
          },
        },
        config,
      );
    } catch (e) {
      fail((e as Error).message);
    }
    if (f.job?.length) {
      const unknown = f.job.filter((n) => !jobs.some((j) => j.name === n));
      if (unknown.length)
        fail(`--job ${unknown.join(', ')}: no such job (jobs: ${jobs.map((j) => j.name).join(', ')})`);
      jobs = jobs.filter((j) => f.job!.includes(j.name));
    }
    // Jobs run side by side (a no-change run is mostly waiting on HEADs); what each prints is held until the
    // jobs before it have printed theirs, so the output reads job by job whatever order they finish in.
    // One set of bars on a terminal for all jobs; plain lines (stderr) otherwise; nothing with --json or a dry run.
    const bars = progressKinds && process.stderr.isTTY ? progressKinds.runBars(process.stderr) : undefined;
    const output = orderedOutput(jobs.length, (text) =>
      bars && process.stdout.isTTY ? bars.log(text) : process.stdout.write(text),
    );
    const summaries: RunSummary[] = [];
    const runJob = async (job: MirrorJob, i: number): Promise<void> => {
      const progress =
        progressKinds &&
        (bars
          ? progressKinds.jobBars(process.stderr, job.name, bars)
          : progressKinds.jobLines(process.stderr, job.name));
      const print = (line: string) => output.write(i, `${line}\n`);
      if (!f.json) print(`${f.dryRun ? 'plan' : 'job'} ${job.name}:`);
      let s: RunSummary;
      try {
        s = await job.run({
          dryRun: f.dryRun ?? false,
          onStep: (st) => !f.json && print(`  ${stepLine(st)}`),
          ...(progress ? { progress } : {}),
        });
      } finally {
        progress?.stop();
      }
      summaries[i] = s;
      if (!f.json) {
        print(
          `  ${f.dryRun ? 'would copy' : 'copied'} ${s.copied.length}, ${f.dryRun ? 'would follow' : 'followed'} ${s.moved.length}, unchanged ${s.unchanged}, ${f.dryRun ? 'would prune' : 'pruned'} ${s.pruned.length}, refused ${s.refused.length}, errors ${s.errors.length}`,
        );
      }
      if (!s.ok) process.exitCode = 1;
    };
    const { limiter } = await import('../async/limit.js');
    const slots = limiter(f.parallelJobs ?? 4);
    try {
      const runs = await Promise.allSettled(
        jobs.map((job, i) => slots(() => runJob(job, i).finally(() => output.end(i)))),
      );
      const failed = runs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    } finally {
      bars?.stop();
      await pool.close();
    }
    if (f.json) process.stdout.write(JSON.stringify(summaries, null, 2) + '\n');
  });
  sync
    .command('status')
    .description('the last run of each mirror job: when, what changed, errors')
    .option('-c, --config <file>', 'config file with mirrors:')
    .option('--state <dir>', 'a state folder of `sync --src yaml` runs instead of a config')
    .option('--json', 'print as JSON')
    .action(async (f: { config?: string; state?: string; json?: boolean }) => {
      const { driverFor } = await import('../storage/driver-for.js');
      const { jobName } = await import('../sync/config.js');
      const { readState } = await import('../sync/state.js');
      const { loadConfig, validateConfig } = await import('../config/load.js');
      let config: Config;
      let names: string[];
      if (f.state) {
        config = validateConfig({ storage: { filesystem: { rootdirectory: resolve(f.state) } } }).config;
        const { FilesystemDriver } = await import('../storage/filesystem.js');
        names = (await new FilesystemDriver(resolve(f.state)).list('docker/registry/v2/_sluice/sync'))
          .filter((n) => n.endsWith('.json'))
          .map((n) => n.slice(0, -5));
      } else {
        config = (await loadConfig(f.config).catch((e: Error) => fail(e.message))).config;
        names = (config.mirrors ?? []).map((m, i) => jobName(m, i));
      }
      const driver = driverFor(config);
      const out: { job: string; lastRun?: RunSummary }[] = [];
      for (const n of names) {
        const st = await readState(driver, n);
        out.push({ job: n, ...(st.lastRun ? { lastRun: st.lastRun } : {}) });
      }
      if (f.json) {
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
      } else {
        for (const o of out) {
          const r = o.lastRun;
          if (!r) {
            process.stdout.write(`${o.job}: never ran\n`);
            continue;
          }
          process.stdout.write(
            `${o.job}: ${r.ok ? 'ok' : 'FAILED'} at ${r.finishedAt}: copied ${r.copied.length}, followed ${r.moved.length}, unchanged ${r.unchanged}, pruned ${r.pruned.length}, refused ${r.refused.length}, errors ${r.errors.length}\n`,
          );
          for (const c of [...r.copied, ...r.moved]) process.stdout.write(`  changed  ${c}\n`);
          for (const e of r.errors) process.stdout.write(`  error    ${e.image}: ${e.error}\n`);
          for (const x of r.refused) process.stdout.write(`  refused  ${x.image}: ${x.reason}\n`);
        }
      }
      if (out.some((o) => o.lastRun && !o.lastRun.ok)) process.exitCode = 1;
    });
}
