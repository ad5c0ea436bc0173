import type { Config } from '../config/schema.js';
import { compileFlows, type FlowPolicy, type FlowSpec } from './flows.js';

/** Distribution's `proxy:` block lets every image of its one upstream in. */
const PROXY_FLOWS: FlowSpec[] = [{ name: 'proxy (Distribution)', images: ['**'] }];

/** The flow rules a config sets (`flows:`; with only Distribution's `proxy:`, every image of it). */
export function flowPolicyOf(config: Config): FlowPolicy {
  const specs: FlowSpec[] = config.flows ?? (config.proxy && !config.upstreams ? PROXY_FLOWS : []);
  return compileFlows(specs, config.access?.sets ?? {});
}
