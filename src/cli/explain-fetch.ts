import type { Config } from '../config/schema.js';
import { formatReference, parseReference } from '../oci/reference.js';
import { decideFlow, flowLabel, platformsText } from '../policy/flows.js';
import { flowPolicyOf } from '../registry/cache-setup.js';

/** The `fetch` answer of `sluice policy explain`: may this upstream image come in, by which flow rule. */
export interface FetchExplanation {
  action: 'fetch';
  allowed: boolean;
  image: string;
  rule?: number;
  ruleName?: string;
  platforms?: string;
  reason: string;
}

/** Decides `fetch` for a reference as the pull-through cache would (names normalized as Docker does). */
export function explainFetch(config: Config, reference: string): FetchExplanation {
  const ref = parseReference(reference);
  const image = `${ref.registry}/${ref.repository}`;
  const d = decideFlow(flowPolicyOf(config), { repository: image, ...(ref.tag ? { tag: ref.tag } : {}), ...(ref.digest ? { digest: ref.digest } : {}) });
  const out: FetchExplanation = { action: 'fetch', allowed: d.allowed, image: formatReference(ref), reason: d.reason };
  if (d.flow) {
    out.rule = d.flow.index;
    if (d.flow.spec.name) out.ruleName = d.flow.spec.name;
    if (d.allowed && d.flow.platforms) out.platforms = platformsText(d.flow);
  }
  if (!config.upstreams?.[ref.registry] && !(config.proxy && !config.upstreams)) out.reason += ` (note: no upstream ${ref.registry} is configured, so the cache would not fetch it at all)`;
  return out;
}

/** Prints a fetch explanation as `policy explain` prints access decisions. */
export function printFetch(e: FetchExplanation, config: Config): string {
  let s = `fetch: ${e.allowed ? 'ALLOWED' : 'DENIED'}\n`;
  if (e.rule !== undefined) {
    const spec = config.flows?.[e.rule - 1];
    const label = flowLabel({ index: e.rule, spec: spec ?? { images: [] } });
    if (spec) s += `  rule:    ${label}: images [${spec.images.join(', ')}]${spec.deny ? ' deny' : ''}\n`;
  }
  if (e.platforms) s += `  platforms: ${e.platforms} (other platforms of an index are not fetched)\n`;
  s += `  reason:  ${e.reason}\n`;
  return s;
}
