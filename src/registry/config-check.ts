import { hasCredentials } from '../auth/config.js';
import { parseAddr, type ConfigCheck } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { retentionProblems } from '../policy/retention.js';
import { tlsServerOptions } from '../config/tls.js';
import { flowProblems } from '../policy/flows.js';
import { checkAccessConfig } from '../policy/validate.js';
import { mirrorNamesProblem } from '../sync/config.js';

/** Runs one phase of the start-up checks: its problem, if it throws one. */
function attempt(fn: () => unknown): string[] {
  try {
    fn();
    return [];
  } catch (e) {
    return [(e as Error).message.replace(/^invalid config: /, '')];
  }
}

/** The phases whose code loads only for a config that has their section. */
interface Optional {
  buildTrust?: (config: Config) => unknown;
  retentionProblems?: typeof retentionProblems;
}

/**
 * Every problem the start-up phases would meet one at a time (flows, access rules, trust keys, mirror job
 * names, the listen address, the TLS files), for `sluice serve` to report with the schema's in one error:
 * a new user fixes one batch, not one phase after another. Reads the files the server would read; no network.
 */
function startupProblems(config: Config, raw: Record<string, unknown>, phases: Optional): string[] {
  const { buildTrust, retentionProblems } = phases;
  const problems: string[] = [];
  // Without upstreams nothing is ever fetched, so the flows would be ignored, silently.
  if (config.flows?.length && !config.upstreams && !config.proxy) {
    problems.push(
      'flows: set, but there is no upstreams: (or proxy:) section, so no image would ever come in: name the registries under upstreams:',
    );
  }
  const sets = config.access?.sets ?? {};
  if (config.flows) problems.push(...flowProblems(config.flows, sets));
  // A section the schema refused is reported already; a parsed one may still name groups or sets that do not exist.
  if (config.access) {
    const checked = checkAccessConfig(raw.access, {
      hasCredentials: hasCredentials(raw.auth as Record<string, unknown> | undefined),
    });
    for (const f of checked.findings) if (f.level === 'error') problems.push(`access: ${f.message}`);
  }
  if (config.retention && retentionProblems) problems.push(...retentionProblems(config.retention, sets));
  if (config.trust && buildTrust) problems.push(...attempt(() => buildTrust(config)));
  const named = mirrorNamesProblem(config.mirrors);
  if (named) problems.push(named);
  problems.push(...attempt(() => parseAddr(config.http.addr)));
  problems.push(...attempt(() => tlsServerOptions(config.http.tls)));
  return problems;
}

/**
 * The start-up checks for a raw config (after its environment and flag overrides). The trust phase reads keys
 * and roots with the signing code (src/sign), and retention rules compile with the collector's policy: each
 * loads only when the config has its section.
 */
export async function startupChecks(raw: Record<string, unknown>): Promise<ConfigCheck> {
  const [trust, retention] = await Promise.all([
    raw['trust'] === undefined ? undefined : import('./trust-setup.js'),
    raw['retention'] === undefined ? undefined : import('../policy/retention.js'),
  ]);
  const phases: Optional = {
    ...(trust ? { buildTrust: trust.buildTrust } : {}),
    ...(retention ? { retentionProblems: retention.retentionProblems } : {}),
  };
  return (config, input) => startupProblems(config, input, phases);
}
