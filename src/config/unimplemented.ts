/**
 * Distribution's config keys that Sluice does not implement yet, by full path, each with an optional
 * hint. Consulted only for keys the schema does not know: adding a key to the schema in schema.ts
 * is all it takes to accept it, and an entry here for it is then simply never reached.
 */
export const UNIMPLEMENTED_DISTRIBUTION_KEYS: ReadonlyMap<string, string | undefined> = new Map<
  string,
  string | undefined
>([
  ['loglevel', 'use log.level'],
  ['log.hooks', undefined],
  ['storage.azure', undefined],
  ['storage.gcs', undefined],
  ['storage.swift', undefined],
  ['storage.oss', undefined],
  ['storage.inmemory', 'use storage.filesystem'],
  ['storage.tag', undefined],
  ['redis', undefined],
  ['reporting', undefined],
  ['proxy', undefined],
  ['middleware', undefined],
  ['compatibility', undefined],
  ['policy', 'access rules go under access:'],
  ['catalog', undefined],
  ['http.net', 'Sluice listens on TCP only'],
  ['http.prefix', 'Sluice serves /v2/ at the root of its address'],
  ['http.http2', undefined],
  ['http.debug', 'Sluice serves /metrics and /healthz on its main address'],
  ['http.tls.letsencrypt', 'give http.tls.certificate and http.tls.key'],
  ['http.tls.ciphersuites', undefined],
  ['health.file', undefined],
  ['health.http', undefined],
  ['health.tcp', undefined],
  ['validation.manifests.urls', undefined],
]);

/** The problem line for an unknown key that Distribution defines, or undefined when Distribution has no such key either. */
export function unimplementedProblem(path: string): string | undefined {
  if (!UNIMPLEMENTED_DISTRIBUTION_KEYS.has(path)) return undefined;
  const hint = UNIMPLEMENTED_DISTRIBUTION_KEYS.get(path);
  return `${path} is a Distribution key Sluice does not implement yet${hint ? ` (${hint})` : ''}`;
}
