import { hasCredentials } from '../auth/config.js';
import { parseAddr } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { tlsServerOptions } from '../config/tls.js';
import { flowProblems } from '../policy/flows.js';
import { retentionProblems } from '../policy/retention.js';
import { checkAccessConfig } from '../policy/validate.js';
import { mirrorNamesProblem } from '../sync/setup.js';
import { buildTrust } from './trust-setup.js';

/** Runs one phase of the start-up checks: its problem, if it throws one. */
function attempt(fn: () => unknown): string[] {
  try {
    fn();
    return [];
  } catch (e) {
    return [(e as Error).message.replace(/^invalid config: /, '')];
  }
}

/**
 * Every problem the start-up phases would meet one at a time (flows, access rules, trust keys, mirror job
 * names, the listen address, the TLS files), for `sluice serve` to report with the schema's in one error:
 * a new user fixes one batch, not one phase after another. Reads the files the server would read; no network.
 */
export function startupProblems(config: Config, raw: Record<string, unknown>): string[] {
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
  if (config.retention) problems.push(...retentionProblems(config.retention, sets));
  if (config.trust) problems.push(...attempt(() => buildTrust(config)));
  const named = mirrorNamesProblem(config);
  if (named) problems.push(named);
  problems.push(...attempt(() => parseAddr(config.http.addr)));
  problems.push(...attempt(() => tlsServerOptions(config.http.tls)));
  return problems;
}
