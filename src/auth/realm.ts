// Where challenges send clients for tokens: a configured realm, or this server's own /token endpoint.
import type { FastifyRequest } from 'fastify';

/** Where challenges send clients for tokens, and whether the Host header may decide it. */
export interface RealmSettings {
  /** A configured realm (auth.issuer.realm, or auth.token.realm for an external issuer). */
  fixed?: string;
  /** auth.issuer.realmfromhost: derive from the Host header. */
  fromHost: boolean;
  /** http.host: the URL clients reach this registry at. */
  publicUrl?: string;
}

/**
 * The token endpoint URL for challenges: configured, or this server's own `/token` at `http.host` or the
 * address the connection arrived at. Never the Host header unless configured: it is the client's to write,
 * and clients send their passwords to the realm.
 */
export function realmFor(r: RealmSettings, req: FastifyRequest): string {
  if (r.fixed) return r.fixed;
  if (r.fromHost && req.headers.host) return `${req.protocol}://${req.headers.host}/token`;
  if (r.publicUrl) return `${r.publicUrl.replace(/\/+$/, '')}/token`;
  const local = (req.socket.localAddress ?? '127.0.0.1').replace(/^::ffff:(?=\d+\.)/, '');
  const host = local.includes(':') ? `[${local}]` : local;
  return `${req.protocol}://${host}:${req.socket.localPort}/token`;
}
