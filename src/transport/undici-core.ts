import { createRequire } from 'node:module';
import type * as Undici from 'undici';

// undici's index.js loads all of undici to hand out its exports: fetch, WebSocket, EventSource, the mock and
// cache stores, SQLite, every interceptor (112 files, about 0.1 s of CPU and a few MiB that a registry never
// uses). Sluice needs the Agent, the redirect interceptor and `request`: these are the same undici modules
// that index.js re-exports, required one by one. undici is pinned by package.json; its package has no
// `exports` map, so these paths are the ones its index.js requires.
const require = createRequire(import.meta.url);
const AgentClass = require('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
const redirect = require('undici/lib/interceptor/redirect.js') as typeof Undici.interceptors.redirect;
const apiRequest = require('undici/lib/api/api-request.js') as (
  this: Undici.Dispatcher,
  opts: object,
) => Promise<Undici.Dispatcher.ResponseData>;
const { parseURL } = require('undici/lib/core/util.js') as { parseURL(url: string | URL): URL };
const { getGlobalDispatcher } = require('undici/lib/global.js') as { getGlobalDispatcher(): Undici.Dispatcher };

/** undici's connection pool per origin (keep-alive, TLS options, timeouts). */
export const Agent = AgentClass;
export type Agent = Undici.Agent;
// A dispatcher (an Agent, or one composed with interceptors) and its namespace of option and response types.
export type { Dispatcher } from 'undici';
/** The interceptors Sluice composes onto its agents. */
export const interceptors = { redirect };

/** Options of one request: undici's, without the origin and path that `url` gives. */
export type RequestOptions = Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  method?: Undici.Dispatcher.HttpMethod;
  dispatcher?: Undici.Dispatcher;
};

/** One HTTP request, as undici's `request(url, opts)` sends it (the global dispatcher unless one is given). */
export function request(url: string | URL, opts: RequestOptions = {}): Promise<Undici.Dispatcher.ResponseData> {
  // What undici's index.js does before it calls the same function: split the URL into origin and path.
  const u = parseURL(url);
  const { dispatcher = getGlobalDispatcher(), ...rest } = opts;
  return apiRequest.call(dispatcher, {
    ...rest,
    origin: u.origin,
    path: u.search ? `${u.pathname}${u.search}` : u.pathname,
    method: opts.method || (opts.body ? 'PUT' : 'GET'),
  });
}
