import type { Config } from '../config/schema.js';
import { formatReference, parseReference } from '../oci/reference.js';
import { decideFlow, flowLabel, platformsText } from '../policy/flows.js';
import { flowPolicyOf } from './cache-setup.js';
import { compileTrustRules, describeTrustRule, TRUST_POINTS, trustLabel, trustRuleFor } from '../policy/trust.js';

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
  const d = decideFlow(flowPolicyOf(config), {
    repository: image,
    ...(ref.tag ? { tag: ref.tag } : {}),
    ...(ref.digest ? { digest: ref.digest } : {}),
  });
  const out: FetchExplanation = { action: 'fetch', allowed: d.allowed, image: formatReference(ref), reason: d.reason };
  if (d.flow) {
    out.rule = d.flow.index;
    if (d.flow.spec.name) out.ruleName = d.flow.spec.name;
    if (d.allowed && d.flow.platforms) out.platforms = platformsText(d.flow);
  }
  if (!config.upstreams?.[ref.registry] && !(config.proxy && !config.upstreams))
    out.reason += ` (note: no upstream ${ref.registry} is configured, so the cache would not fetch it at all)`;
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

/** The `trust` answer of `sluice policy explain`: which signature requirement covers an image, at each place it may move. */
export function explainTrust(config: Config, reference: string): { allowed: boolean; lines: string[]; json: unknown } {
  const rules = config.trust ? compileTrustRules(config.trust, config.access?.sets ?? {}) : [];
  const ref = parseReference(reference);
  // Local names are judged as written; upstream names in their full spelling.
  const name = reference.split('/')[0]!.match(/[.:]|^localhost$/)
    ? `${ref.registry}/${ref.repository}`
    : reference.replace(/[:@].*$/, '');
  const out = TRUST_POINTS.map((where) => {
    const r = trustRuleFor(rules, name, where);
    return r
      ? { where, rule: r.index, requires: describeTrustRule(r.spec), label: trustLabel(r) }
      : { where, requires: 'nothing' };
  });
  const lines = [
    `trust: ${name}`,
    ...out.map(
      (o) => `  ${o.where.padEnd(11)} ${'rule' in o ? `${o.label}: ${o.requires}` : 'no rule: nothing required'}`,
    ),
  ];
  return { allowed: true, lines, json: { action: 'trust', image: name, places: out } };
}
