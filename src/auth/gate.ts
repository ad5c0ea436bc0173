// What the request-facing helpers (login, identify, authorize, token grants) see of AccessControl.
// AccessControl implements it; the helpers take it, so none of them imports access-control.ts back.
import type { FastifyRequest } from 'fastify';
import type { Action, Decision, Principal, Target } from '../policy/types.js';
import type { AuditLog } from './audit.js';
import type { Identity } from './identity.js';
import type { AccessEntry } from './scope.js';
import type { ExternalTokenVerifier, TokenIssuer } from './tokens.js';

/** Access control as its helpers use it: token services, the audit log, challenges and decisions. */
export interface AccessGate {
  readonly issuer: TokenIssuer | undefined;
  readonly external: ExternalTokenVerifier | undefined;
  readonly audit: AuditLog | undefined;
  /** Whether any caller can log in at all. */
  readonly hasCredentials: boolean;
  /** Other repository names a client's repository name may reach, for token grants. */
  readonly nameAliases?: (name: string) => string[];
  /** The challenge a 401 carries. */
  challenge(req: FastifyRequest, scopes: AccessEntry[], error?: string): string;
  /** Checks a username and password (or robot token) from a client address. */
  checkCredentials(username: string, password: string, address: string): Promise<Principal | undefined>;
  /** checkCredentials for a request, with throttling turned into a 429. */
  checkCredentialsOrThrottle(req: FastifyRequest, username: string, password: string): Promise<Principal | undefined>;
  /** Establishes who sent a request. */
  identify(req: FastifyRequest): Promise<Identity>;
  /** Decides one action for a principal (no I/O). */
  decide(principal: Principal, action: Action, target: Target): Decision;
}
