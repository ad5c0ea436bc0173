// Establishing who sent a request: session, Basic credentials, or a bearer token from our issuer or an external one.
import type { FastifyRequest } from 'fastify';
import { OciError } from '../oci/errors.js';
import { ANONYMOUS } from '../policy/types.js';
import type { AccessGate } from './gate.js';
import { decodeBasic, principalFromSubject, type Identity } from './identity.js';
import { recordRefusedLogin } from './login.js';
import { TokenError } from './tokens.js';

const identities = new WeakMap<FastifyRequest, Identity>();

/** Establishes who sent a request, once per request; bad credentials or tokens are a 401, never anonymous. */
export async function identifyRequest(gate: AccessGate, req: FastifyRequest): Promise<Identity> {
  const cached = identities.get(req);
  if (cached) return cached;
  const id = await identifyUncached(gate, req);
  identities.set(req, id);
  return id;
}

async function identifyUncached(gate: AccessGate, req: FastifyRequest): Promise<Identity> {
  const header = req.headers.authorization;
  // A session grants nothing by itself: the policy decides every request, as it does for Basic credentials.
  if (!header)
    return req.sessionPrincipal
      ? { principal: req.sessionPrincipal, via: 'session' }
      : { principal: ANONYMOUS, via: 'none' };
  const sp = header.indexOf(' ');
  const scheme = header.slice(0, sp).toLowerCase();
  const value = header.slice(sp + 1).trim();
  if (scheme === 'basic') {
    const creds = decodeBasic(value);
    const p = creds ? await gate.checkCredentialsOrThrottle(req, creds.user, creds.password) : undefined;
    if (!p) refuse(gate, req, { message: 'invalid username or password', user: creds?.user });
    return { principal: p, via: 'basic' };
  }
  if (scheme === 'bearer') {
    let own: TokenError | undefined;
    if (gate.issuer) {
      try {
        const t = await gate.issuer.verify(value);
        return { principal: principalFromSubject(t.subject), via: 'bearer', grants: t.access };
      } catch (e) {
        if (!(e instanceof TokenError)) throw e;
        own = e;
      }
    }
    if (gate.external) {
      try {
        const t = await gate.external.verify(value);
        return {
          principal: t.subject ? { kind: 'user', name: t.subject } : ANONYMOUS,
          via: 'external',
          grants: t.access,
        };
      } catch (e) {
        if (!(e instanceof TokenError)) throw e;
        own ??= e;
      }
    }
    refuse(gate, req, { message: own?.message ?? 'token rejected', error: 'invalid_token' });
  }
  refuse(gate, req, { message: `unsupported authorization scheme "${scheme.slice(0, 20)}"` });
}

/** A refused login: why, the challenge's error code, and the user it named (never the password). */
interface Refusal {
  message: string;
  error?: string;
  user?: string;
}

function refuse(gate: AccessGate, req: FastifyRequest, r: Refusal): never {
  req.authChallenge = gate.challenge(req, [], r.error);
  recordRefusedLogin(gate.audit, req, r.user, r.message, 401);
  throw new OciError('UNAUTHORIZED', r.message);
}
