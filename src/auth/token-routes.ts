import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AccessControl } from './access-control.js';
import { decodeBasic, principalFromSubject, subjectOf, TooManyAttempts } from './access-control.js';
import { recordRefusedLogin } from './login.js';
import { basicChallenge, parseScopes, type AccessEntry } from './scope.js';
import { TokenError } from './tokens.js';
import { principalText, ANONYMOUS, type Principal } from '../policy/types.js';

const FORM_LIMIT = 64 * 1024;

async function readForm(req: FastifyRequest): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req.raw) {
    size += (c as Buffer).length;
    if (size > FORM_LIMIT) throw new Error('form too large');
    chunks.push(c as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function queryList(v: unknown): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

function unauthorized(
  ac: AccessControl,
  req: FastifyRequest,
  reply: FastifyReply,
  message: string,
  user?: string,
): FastifyReply {
  recordRefusedLogin(ac.audit, req, user, message, 401);
  return reply
    .code(401)
    .header('www-authenticate', basicChallenge(ac.service))
    .header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message }] }));
}

function tooMany(
  ac: AccessControl,
  req: FastifyRequest,
  reply: FastifyReply,
  e: TooManyAttempts,
  user: string,
): FastifyReply {
  recordRefusedLogin(ac.audit, req, user, e.message, 429);
  return reply
    .code(429)
    .header('retry-after', String(e.retryAfter))
    .header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: e.message }] }));
}

/** Checks credentials for the token endpoint; undefined after a reply was sent (401 or 429). */
async function login(
  ac: AccessControl,
  req: FastifyRequest,
  reply: FastifyReply,
  user: string,
  password: string,
): Promise<Principal | undefined> {
  let p: Principal | undefined;
  try {
    p = await ac.checkCredentials(user, password, req.ip);
  } catch (e) {
    if (!(e instanceof TooManyAttempts)) throw e;
    tooMany(ac, req, reply, e, user);
    return undefined;
  }
  if (!p) unauthorized(ac, req, reply, 'invalid username or password', user);
  return p;
}

/** A refresh token bound to the principal's current credential; none for anonymous callers. */
async function refreshFor(ac: AccessControl, principal: Principal): Promise<string | undefined> {
  const credential = ac.credential(principal);
  return credential === undefined ? undefined : ac.issuer!.issueRefresh(subjectOf(principal), credential);
}

/** Signs an access token for what the policy grants of the requested scopes, for `service` when it is one of ours. */
async function issue(
  ac: AccessControl,
  principal: Principal,
  scopes: AccessEntry[],
  service: string | undefined,
): Promise<{ token: string; expiresIn: number; issuedAt: string; access: AccessEntry[] }> {
  const access = ac.grant(principal, scopes);
  const t = await ac.issuer!.issue(subjectOf(principal), access, service);
  return { ...t, access };
}

/** Registers `GET /token` (Docker token spec) and `POST /token` (OAuth2 password and refresh_token grants). */
export function registerTokenRoutes(app: FastifyInstance, ready: Promise<AccessControl>): void {
  app.get('/token', async (req, reply) => {
    const ac = await ready;
    if (!ac.issuer)
      return reply
        .code(404)
        .send({ errors: [{ code: 'UNSUPPORTED', message: 'this registry does not issue tokens' }] });
    const q = req.query as Record<string, unknown>;
    let principal: Principal = ANONYMOUS;
    const header = req.headers.authorization;
    if (header) {
      const sp = header.indexOf(' ');
      const creds =
        header.slice(0, sp).toLowerCase() === 'basic' ? decodeBasic(header.slice(sp + 1).trim()) : undefined;
      if (!creds) return unauthorized(ac, req, reply, 'invalid username or password');
      const p = await login(ac, req, reply, creds.user, creds.password);
      if (!p) return reply;
      principal = p;
    }
    const t = await issue(ac, principal, parseScopes(queryList(q.scope)), queryList(q.service)[0]);
    const body: Record<string, unknown> = {
      token: t.token,
      access_token: t.token,
      expires_in: t.expiresIn,
      issued_at: t.issuedAt,
    };
    if (q.offline_token === 'true') {
      const refresh = await refreshFor(ac, principal);
      if (refresh) body.refresh_token = refresh;
    }
    req.log.debug({ principal: principalText(principal), access: t.access }, 'token issued');
    return reply
      .code(200)
      .header('content-type', 'application/json')
      .header('cache-control', 'no-store')
      .send(JSON.stringify(body));
  });

  app.post('/token', async (req, reply) => {
    const ac = await ready;
    if (!ac.issuer)
      return reply
        .code(404)
        .send({ errors: [{ code: 'UNSUPPORTED', message: 'this registry does not issue tokens' }] });
    let form: URLSearchParams;
    try {
      form = await readForm(req);
    } catch {
      return reply.code(400).send({ error: 'invalid_request', error_description: 'the form is too large' });
    }
    const grant = form.get('grant_type');
    let principal: Principal;
    let refresh: string | undefined;
    if (grant === 'password') {
      const user = form.get('username') ?? '';
      const p = await login(ac, req, reply, user, form.get('password') ?? '');
      if (!p) return reply;
      principal = p;
      if (form.get('access_type') === 'offline') refresh = await refreshFor(ac, principal);
    } else if (grant === 'refresh_token') {
      let sub: string;
      try {
        // Bound to the credential it was issued under: a changed password, a re-created user or robot, or one
        // that is gone or expired refuses it.
        sub = await ac.issuer.verifyRefresh(form.get('refresh_token') ?? '', (s) =>
          ac.credential(principalFromSubject(s)),
        );
      } catch (e) {
        if (e instanceof TokenError) return unauthorized(ac, req, reply, e.message);
        throw e;
      }
      principal = principalFromSubject(sub);
      refresh = form.get('refresh_token') ?? undefined;
    } else {
      return reply
        .code(400)
        .send({ error: 'unsupported_grant_type', error_description: 'grant_type must be password or refresh_token' });
    }
    const scopes = parseScopes(form.getAll('scope'));
    const t = await issue(ac, principal, scopes, form.get('service') ?? undefined);
    const body: Record<string, unknown> = {
      access_token: t.token,
      token_type: 'Bearer',
      expires_in: t.expiresIn,
      issued_at: t.issuedAt,
      scope: form.getAll('scope').join(' '),
    };
    if (refresh) body.refresh_token = refresh;
    return reply
      .code(200)
      .header('content-type', 'application/json')
      .header('cache-control', 'no-store')
      .send(JSON.stringify(body));
  });

  app.get('/token/jwks', async (_req, reply) => {
    const ac = await ready;
    if (!ac.issuer) return reply.code(404).send({ keys: [] });
    return reply.code(200).send({ keys: [ac.issuer.publicJwk] });
  });
}
