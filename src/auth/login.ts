// Logins with a password or robot token: the check itself, and failed-login throttling per address and per user.
import type { FastifyRequest } from 'fastify';
import { OciError } from '../oci/errors.js';
import type { Principal } from '../policy/types.js';
import type { FailureLimiter } from './attempts.js';
import type { AuditLog } from './audit.js';
import { PoolBusyError } from './bcrypt-pool.js';
import type { AccessGate } from './gate.js';
import type { HtpasswdStore } from './htpasswd.js';
import { ROBOT_PREFIX, type RobotStore } from './robots.js';

/** Thrown when a client or a user has used up its failed logins, or password checks are swamped: a 429. */
export class TooManyAttempts extends Error {
  constructor(
    message: string,
    readonly retryAfter: number,
  ) {
    super(message);
  }
}

/** The accounts a login is checked against, and the failed-login counters that guard them. */
export interface LoginState {
  htpasswd: HtpasswdStore | undefined;
  robots: RobotStore | undefined;
  byAddress: FailureLimiter;
  byUser: FailureLimiter;
}

/** One login: a username and its password (or robot token), from a client address. */
export interface LoginAttempt {
  username: string;
  password: string;
  address: string;
}

/**
 * Checks a login; the same work is done whether the account exists or not. Throws TooManyAttempts once the
 * address or the user has failed too often in the window, before any password work, whatever the password:
 * a guess must not learn anything from a 429.
 */
export async function checkLogin(state: LoginState, attempt: LoginAttempt): Promise<Principal | undefined> {
  const { username, password, address } = attempt;
  const addressKey = `a\0${address}`;
  const userKey = `u\0${username}`;
  const wait = state.byAddress.retryAfter(addressKey) ?? state.byUser.retryAfter(userKey);
  if (wait !== undefined) throw new TooManyAttempts('too many failed logins; try again later', wait);
  let p: Principal | undefined;
  if (username.startsWith(ROBOT_PREFIX)) {
    const name = username.slice(ROBOT_PREFIX.length);
    p = state.robots?.verify(name, password) ? { kind: 'robot', name } : undefined;
  } else if (state.htpasswd) {
    try {
      p = (await state.htpasswd.verify(username, password)) ? { kind: 'user', name: username } : undefined;
    } catch (e) {
      if (e instanceof PoolBusyError)
        throw new TooManyAttempts('too many logins are being checked; try again shortly', 1);
      throw e;
    }
  }
  if (!p) {
    state.byAddress.fail(addressKey);
    state.byUser.fail(userKey);
  }
  return p;
}

/** A login for a request: too many failures become the OCI TOOMANYREQUESTS error with Retry-After. */
export async function checkRequestLogin(
  gate: AccessGate,
  req: FastifyRequest,
  login: { username: string; password: string },
): Promise<Principal | undefined> {
  try {
    return await gate.checkCredentials(login.username, login.password, req.ip);
  } catch (e) {
    if (!(e instanceof TooManyAttempts)) throw e;
    req.retryAfter = e.retryAfter;
    recordRefusedLogin(gate.audit, req, login.username, e.message, 429);
    throw new OciError('TOOMANYREQUESTS', e.message);
  }
}

/** Records a refused login (401, or 429 when throttled): its audit line, and the name its `login.failed` event names. */
export function recordRefusedLogin(
  audit: AuditLog | undefined,
  req: FastifyRequest,
  user: string | undefined,
  reason: string,
  status: 401 | 429,
): void {
  if (user !== undefined) req.loginUser = user;
  audit?.write({
    principal: user ?? 'unknown',
    address: req.ip,
    action: 'login',
    decision: 'denied',
    reason,
    method: req.method,
    status,
  });
}
