import type { FastifyRequest } from 'fastify';
import type { AccessRequest } from '../auth/access-request.js';
import type { Config } from '../config/schema.js';

export type { AccessRequest };

/** Decides a request before the route runs; throws an OciError (UNAUTHORIZED, DENIED) to refuse it. */
export type Authorizer = (request: FastifyRequest, access: AccessRequest) => Promise<void>;

/** Lets everyone do everything: the registry's behaviour with no access control configured. */
export const allowAll: Authorizer = async () => undefined;

/** Whether a config asks for any access control (users, robots, an external issuer, rules or an audit log). */
export function accessControlConfigured(config: Config): boolean {
  return Boolean(
    config.auth?.htpasswd || config.auth?.robots || config.auth?.token || config.access?.rules || config.audit?.enabled,
  );
}
