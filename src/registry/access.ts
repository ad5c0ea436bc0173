import type { FastifyRequest } from 'fastify';
import type { AccessRequest } from '../auth/access-request.js';

export type { AccessRequest };

/** Decides a request before the route runs; throws an OciError (UNAUTHORIZED, DENIED) to refuse it. */
export type Authorizer = (request: FastifyRequest, access: AccessRequest) => Promise<void>;

/** Lets everyone do everything: the registry's behaviour with no access control configured. */
export const allowAll: Authorizer = async () => undefined;
