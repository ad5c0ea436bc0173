// How the cache tells an upstream outage (answer with what it has) from a refusal, and the error a client sees.
import { OciError } from '../oci/errors.js';
import { isConnectionError, RegistryError } from '../transport/registry-client.js';
import type { CacheTarget } from './names.js';

/** An upstream failure the cache may answer with what it has (timeouts, refused connections, 5xx, 429). */
export function isOutage(e: unknown): boolean {
  if (e instanceof RegistryError) return e.status >= 500 || e.status === 429 || e.status === 401 || e.status === 403;
  return (
    isConnectionError(e) ||
    /cannot reach registry|timeout|ECONNREFUSED|socket/i.test(String((e as Error)?.message ?? ''))
  );
}

/** The error a client is sent when upstream failed the cache: DENIED for a refusal, 429 or 502 otherwise. */
export function ociErrorForOutage(t: CacheTarget, e: unknown): OciError {
  // A refusal is not an outage: say so, and where the credentials are set (clients show 4xx messages, not 5xx bodies).
  if (e instanceof RegistryError && (e.status === 401 || e.status === 403)) {
    const refused = `upstream ${t.upstream.name} refused the cache's request for ${t.image} (HTTP ${e.status})`;
    return new OciError('DENIED', `${refused}: check the credentials under upstreams.${t.upstream.name}`);
  }
  const msg = `upstream ${t.upstream.name} failed for ${t.image}: ${(e as Error).message}`;
  if (e instanceof RegistryError && e.status === 429) return new OciError('TOOMANYREQUESTS', msg);
  return new OciError('UNKNOWN', msg, undefined, 502);
}
