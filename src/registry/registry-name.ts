import type { Config } from '../config/schema.js';

// Which name this registry goes by: pure reads of the config, apart from trust-setup.ts so that the UI and
// the pull path know it without loading the signing code.

/** Whether a name's first segment is a registry host (`docker.io`, `host:5000`, `localhost`) rather than a namespace. */
export function looksLikeHost(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost';
}

/** This registry's own name (`host[:port]`), from `http.host`; undefined when it is not configured. */
export function registryHost(config: Config): string | undefined {
  return config.http.host ? new URL(config.http.host).host : undefined;
}

// Identities that compare the signed name with the image's name; exactReference and exactRepository name it themselves.
const NAMED_IDENTITIES = new Set(['matchExact', 'matchRepoDigestOrExact', 'matchRepository', 'remapIdentity']);

/**
 * Refuses to serve with a `trust:` rule on pull that judges local repositories by this registry's name
 * when `http.host` does not say what that name is: the alternative, a request's Host header, is chosen
 * by the client, and with it the name a signature must carry.
 */
export function requireRegistryName(config: Config): void {
  if (!config.trust || registryHost(config)) return;
  for (const [i, rule] of config.trust.require.entries()) {
    const identity = typeof rule.identity === 'string' ? rule.identity : rule.identity.type;
    // A notation signature names no image, only its digest: only cosign signatures are judged by name.
    if (rule.keys.length === 0 && rule.identities.length === 0) continue;
    if (!rule.on.includes('pull') || !NAMED_IDENTITIES.has(identity)) continue;
    const local = rule.images.find((p) => !looksLikeHost(p.split('/')[0]!));
    if (local === undefined) continue;
    const label = rule.name ? `trust.require rule ${i + 1} "${rule.name}"` : `trust.require rule ${i + 1}`;
    throw new Error(
      `${label}: identity ${identity} judges local repositories ("${local}") by this registry's own name, and http.host is not set: ` +
        'set http.host to the URL clients pull from (e.g. https://registry.example.com), or use exactReference or exactRepository',
    );
  }
}
