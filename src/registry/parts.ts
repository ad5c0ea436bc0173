import type { Config } from '../config/schema.js';
import { accessControlConfigured } from './access.js';

// The registry's optional parts, each loaded only when the config asks for it: with the default config
// `sluice serve` then compiles no signing code (src/sign, sigstore), no cache or mirror jobs (the copy engine,
// the registry client, undici), no collector (gc/, semver) and no events journal, and holds none of them in
// memory (issue 22). Their modules are imported here by `import()` and nowhere else on the server's path.

/** The modules of the optional parts a config asks for; a part the config leaves out is absent. */
export interface RegistryParts {
  /** `auth:`, `access.rules` or `audit:`: users, robots, tokens, rules and the audit log (jose, bcrypt). */
  access?: typeof import('./auth-setup.js');
  /** `trust:`: signature requirements on pull, cache and mirror. */
  trust?: typeof import('./trust-setup.js');
  /** `upstreams:` or Distribution's `proxy:`: the pull-through cache and the routes through it. */
  cache?: { setup: typeof import('./cache-setup.js'); routes: typeof import('./cache-routes.js') };
  /** `mirrors:`: scheduled mirror jobs. */
  mirrors?: typeof import('./sync-setup.js');
  /** `storage.gc.enabled`: the collector on its schedule. */
  gc?: typeof import('./gc-setup.js');
  /** `notifications:`: the events journal, its deliveries and its API. */
  events?: typeof import('./events-setup.js');
}

/** Loads the parts `config` asks for, all at once. */
export async function loadParts(config: Config): Promise<RegistryParts> {
  const [access, trust, cacheSetup, cacheRoutes, mirrors, gc, events] = await Promise.all([
    accessControlConfigured(config) ? import('./auth-setup.js') : undefined,
    config.trust ? import('./trust-setup.js') : undefined,
    config.upstreams || config.proxy ? import('./cache-setup.js') : undefined,
    config.upstreams || config.proxy ? import('./cache-routes.js') : undefined,
    config.mirrors?.length ? import('./sync-setup.js') : undefined,
    config.storage.gc?.enabled ? import('./gc-setup.js') : undefined,
    config.notifications ? import('./events-setup.js') : undefined,
  ]);
  return {
    ...(access ? { access } : {}),
    ...(trust ? { trust } : {}),
    ...(cacheSetup && cacheRoutes ? { cache: { setup: cacheSetup, routes: cacheRoutes } } : {}),
    ...(mirrors ? { mirrors } : {}),
    ...(gc ? { gc } : {}),
    ...(events ? { events } : {}),
  };
}
