import { compileFlows, type FlowPolicy, type FlowSpec } from './flows.js';

/** Distribution's `proxy:` block lets every image of its one upstream in. */
const PROXY_FLOWS: FlowSpec[] = [{ name: 'proxy (Distribution)', images: ['**'] }];

/** The parts of a config that decide its flow rules (policy/ reads them without importing config/). */
export interface FlowsConfig {
  flows?: FlowSpec[];
  proxy?: unknown;
  upstreams?: unknown;
  access?: { sets?: Parameters<typeof compileFlows>[1] };
}

/** The flow rules a config sets (`flows:`; with only Distribution's `proxy:`, every image of it). */
export function flowPolicyOf(config: FlowsConfig): FlowPolicy {
  const specs: FlowSpec[] = config.flows ?? (config.proxy && !config.upstreams ? PROXY_FLOWS : []);
  return compileFlows(specs, config.access?.sets ?? {});
}
