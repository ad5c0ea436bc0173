// Who a request comes from: the Identity type, the request fields auth sets, token subjects and Basic credentials.
import type { AccessEntry } from './scope.js';
import { ANONYMOUS, type Principal } from '../policy/types.js';
import { ROBOT_PREFIX } from './robots.js';

/** Who a request comes from and how that was established. */
export interface Identity {
  principal: Principal;
  via: 'none' | 'basic' | 'bearer' | 'external' | 'session';
  /** What a bearer token grants; absent for Basic and anonymous requests (the policy decides those). */
  grants?: AccessEntry[];
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The WWW-Authenticate challenge to send with a 401. */
    authChallenge?: string;
    /** The last access decision, for the audit log. */
    auditAccess?: { principal: string; action: string; repository?: string; reference?: string; rule?: string };
    /** Seconds a 429 asks the client to wait (sent as Retry-After). */
    retryAfter?: number;
    /** The user name of a refused login (never the password), for its event. */
    loginUser?: string;
    /** Who a verified web UI session cookie names; set only on `/api/v1/` requests (src/ui/session.ts). */
    sessionPrincipal?: Principal;
  }
}

/** The principal a token subject names: '' is anonymous, `robot$x` a robot, anything else a user. */
export function principalFromSubject(sub: string): Principal {
  if (!sub) return ANONYMOUS;
  if (sub.startsWith(ROBOT_PREFIX)) return { kind: 'robot', name: sub.slice(ROBOT_PREFIX.length) };
  return { kind: 'user', name: sub };
}

/** The token subject of a principal. */
export function subjectOf(p: Principal): string {
  return p.kind === 'anonymous' ? '' : p.kind === 'robot' ? `${ROBOT_PREFIX}${p.name}` : p.name;
}

/** Decodes a Basic credential; the username ends at the first colon, the password may hold colons. */
export function decodeBasic(value: string): { user: string; password: string } | undefined {
  const text = Buffer.from(value, 'base64').toString('utf8');
  const i = text.indexOf(':');
  if (i <= 0) return undefined;
  return { user: text.slice(0, i), password: text.slice(i + 1) };
}
