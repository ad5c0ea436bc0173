import type { Command } from 'commander';
import type { Upstreams as UpstreamsType } from '../upstream/upstreams.js';
import type { UpstreamConfig } from '../upstream/config.js';
import type { SignatureGate } from '../passthrough/signatures.js';
import type { FlowPolicy } from '../policy/flows.js';
import { fail } from './fail.js';
import { sluiceErrors } from './option-values.js';

interface PassthroughCommandFlags {
  from?: string;
  to?: string;
  mode?: string;
  registries?: string;
  images?: string[];
  config?: string;
  policy?: string;
  upstream?: string[];
  registryDeadline: string;
  dryRun?: boolean;
  json?: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** `HOST=URL` pairs of `--upstream`, as upstreams: entries. */
function upstreamFlags(pairs: string[]): Record<string, { url: string }> {
  const out: Record<string, { url: string }> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0 || !/^https?:\/\//.test(p.slice(eq + 1)))
      fail(`--upstream ${p}: expected HOST=URL, e.g. docker.io=http://127.0.0.1:5000`);
    out[p.slice(0, eq).toLowerCase()] = { url: p.slice(eq + 1) };
  }
  return out;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Registers `sluice passthrough`: seed a nested Docker daemon from the host daemon. */
export function registerPassthroughCommand(program: Command): void {
  const cmd = program
    .command('passthrough')
    .description(
      'copy images from the host Docker daemon into this (nested) one, filtered by mode, registry allowlist and image patterns; ' +
        'reads DIND_HOST_PASSTHROUGH, DIND_HOST_PASSTHROUGH_REGISTRIES, DIND_HOST_PASSTHROUGH_IMAGES and DIND_HOST_DOCKER_SOCK as the box dind image does',
    )
    .option(
      '--from <host>',
      'the host daemon (unix:///path, a socket path or tcp://HOST:PORT; default $DIND_HOST_DOCKER_SOCK, else /var/run/host-docker.sock)',
    )
    .option('--to <host>', 'the daemon to seed (default $DOCKER_HOST, else unix:///var/run/docker.sock)')
    .option(
      '--mode <mode>',
      'off (also 0, false, no, empty): nothing; public: images an anonymous client may pull from an allowed registry; all: every tagged image (default $DIND_HOST_PASSTHROUGH, else public)',
    )
    .option(
      '--registries <list>',
      'space-separated registries public may copy from; all ignores it (default $DIND_HOST_PASSTHROUGH_REGISTRIES, else docker.io ghcr.io quay.io gcr.io registry.k8s.io public.ecr.aws mcr.microsoft.com)',
    )
    .option(
      '--images <list>',
      'space-separated references or globs an image must also match (* within a segment, ** across; repeatable; default $DIND_HOST_PASSTHROUGH_IMAGES)',
      collect,
    )
    .option(
      '-c, --config <file>',
      'config file whose upstreams: say where registries are reached (url, TLS, credentials for signature lookups), ' +
        'whose flows: an image must pass as the cache would, and whose trust: rules (on: passthrough) images must satisfy',
    )
    .option(
      '--policy <file>',
      'a containers-policy.json (sigstoreSigned, reject, insecureAcceptAnything) host images must satisfy; signatures are read from the registry each RepoDigest names',
    )
    .option(
      '--upstream <host=url>',
      'reach registry HOST at URL for the public check (repeatable), e.g. docker.io=http://127.0.0.1:5000',
      collect,
    )
    .option(
      '--registry-deadline <duration>',
      'how long the public check waits for one registry question before "not proven public" (e.g. 30s)',
      '60s',
    )
    .option('--dry-run', 'print the plan (reference, decision, reason) and copy nothing')
    .option('--json', 'print the plan and the result as JSON');
  sluiceErrors(cmd);
  cmd.action(async (f: PassthroughCommandFlags) => {
    // Only what this run needs is loaded: a run with nothing new should start and finish quickly.
    const [
      { resolveSettings, SettingError },
      { runPassthrough },
      { DockerEngine, defaultDaemonHost, parseDaemonHost },
      { formatBytes },
    ] = await Promise.all([
      import('../passthrough/settings.js'),
      import('../passthrough/run.js'),
      import('../transport/docker-engine.js'),
      import('../copy/progress.js'),
    ]);
    let settings: ReturnType<typeof resolveSettings>;
    try {
      settings = resolveSettings({ mode: f.mode, registries: f.registries, images: f.images?.join(' '), from: f.from });
    } catch (e) {
      if (e instanceof SettingError) fail(e.message);
      throw e;
    }
    const { isDuration, parseDuration } = await import('../config/duration.js');
    if (!isDuration(f.registryDeadline) || parseDuration(f.registryDeadline) <= 0)
      fail(`--registry-deadline ${f.registryDeadline}: expected a duration such as 30s, 2m`);
    const publicDeadlineMs = parseDuration(f.registryDeadline);
    const to = defaultDaemonHost(f.to);
    let same = false;
    try {
      const a = parseDaemonHost(settings.from);
      const b = parseDaemonHost(to);
      same =
        a.socketPath !== undefined ? a.socketPath === b.socketPath : a.hostname === b.hostname && a.port === b.port;
    } catch (e) {
      fail((e as Error).message);
    }
    if (same && settings.mode !== 'off') fail(`--from and --to are the same daemon (${to}): nothing to copy`);

    let configured: Record<string, UpstreamConfig> = {};
    const signatures: SignatureGate[] = [];
    let flows: FlowPolicy | undefined;
    if (f.config) {
      const { ConfigError, loadConfig } = await import('../config/load.js');
      try {
        const { config } = await loadConfig(f.config);
        configured = config.upstreams ?? {};
        // Only a config that sets flows: speaks about them; one for upstreams: or trust: alone refuses nothing.
        if (config.flows) flows = (await import('../policy/flow-policy.js')).flowPolicyOf(config);
        if (config.trust) {
          const [{ buildTrust }, { configGate }] = await Promise.all([
            import('../registry/trust-setup.js'),
            import('../passthrough/signatures.js'),
          ]);
          const trust = buildTrust(config);
          if (trust) signatures.push(configGate(trust));
        }
      } catch (e) {
        if (e instanceof ConfigError) fail(e.message.split('\n').join('; '));
        if (/^(trust\.|flow rule )/.test((e as Error).message)) fail(`${f.config}: ${(e as Error).message}`);
        throw e;
      }
    }
    if (f.policy) {
      const [{ loadPolicyFile }, { policyGate }] = await Promise.all([
        import('../sign/index.js'),
        import('../passthrough/signatures.js'),
      ]);
      try {
        signatures.push(policyGate(await loadPolicyFile(f.policy), f.policy));
      } catch (e) {
        fail(`--policy ${f.policy}: ${(e as Error).message}`);
      }
    }
    const flagged = upstreamFlags(f.upstream ?? []);
    if (Object.keys(flagged).length > 0) {
      const { upstreamSchema } = await import('../upstream/config.js');
      for (const [host, u] of Object.entries(flagged))
        configured[host] = upstreamSchema.parse({ ...(configured[host] ?? {}), url: u.url });
    }
    let upstreams: UpstreamsType | undefined;
    const makeUpstreams = async (): Promise<UpstreamsType> => {
      const { Upstreams } = await import('../upstream/upstreams.js');
      upstreams ??= new Upstreams(configured);
      return upstreams;
    };

    // A progress line only where someone watches it; logs and pipes get the table alone.
    const tty = process.stderr.isTTY && !f.json;
    let lastDraw = 0;
    const started = Date.now();
    const onProgress = tty
      ? (bytes: number) => {
          const now = Date.now();
          if (now - lastDraw < 100) return;
          lastDraw = now;
          const rate = bytes / Math.max((now - started) / 1000, 0.001);
          process.stderr.write(`\rpassthrough: ${formatBytes(bytes)} sent (${formatBytes(rate)}/s)   `);
        }
      : undefined;

    const from = new DockerEngine(settings.from);
    const target = new DockerEngine(to);
    let result: Awaited<ReturnType<typeof runPassthrough>>;
    try {
      result = await runPassthrough({
        mode: settings.mode,
        registries: settings.registries,
        images: settings.images,
        from,
        to: target,
        upstreams: makeUpstreams,
        dryRun: f.dryRun ?? false,
        signatures,
        publicDeadlineMs,
        ...(flows ? { flows } : {}),
        ...(onProgress ? { onProgress } : {}),
      });
    } catch (e) {
      fail((e as Error).message);
    } finally {
      if (tty && lastDraw) process.stderr.write('\n');
      await upstreams?.close();
    }
    for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
    if (f.json) {
      process.stdout.write(
        JSON.stringify({ ...result, registries: settings.registries, images: settings.images }, null, 2) + '\n',
      );
    } else if (settings.mode === 'off') {
      process.stdout.write(`passthrough is off (${settings.origins.mode}): nothing copied\n`);
    } else if (result.idle) {
      process.stdout.write(`${result.idle}: nothing copied\n`);
    } else {
      if (result.entries.length > 0) {
        const rows = [['REFERENCE', 'DECISION', 'REASON', ...(f.dryRun ? [] : ['RESULT'])]];
        for (const e of result.entries)
          rows.push([e.reference, e.decision, e.reason, ...(f.dryRun ? [] : [e.result ?? ''])]);
        // The reason is the long column: it goes last unless there is a result to show.
        if (!f.dryRun) for (const r of rows) r.splice(2, 2, r[3]!, r[2]!);
        process.stdout.write(table(rows) + '\n');
      }
      const planned = result.entries.filter((e) => e.decision === 'copy').length;
      process.stdout.write(
        f.dryRun
          ? `would copy ${planned} of ${result.entries.length} host tags from ${result.from} to ${result.to} (mode ${settings.mode})\n`
          : `copied ${result.copied} of ${result.entries.length} host tags (${formatBytes(result.bytes)}) from ${result.from} to ${result.to} in ${result.seconds.toFixed(1)} s${result.failed ? `; ${result.failed} failed` : ''}\n`,
      );
    }
    if (result.failed > 0) process.exitCode = 1;
    // A registry that missed its deadline may hold a socket open until it gives up; the run is over, and so is
    // the process (stdout and stderr are written synchronously to files, pipes and terminals on Linux).
    process.exit();
  });
}
