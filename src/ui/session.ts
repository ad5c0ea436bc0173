import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AccessControl } from '../auth/access-control.js';
import { principalFromSubject, subjectOf } from '../auth/identity.js';
import { TooManyAttempts } from '../auth/login.js';
import { TokenError } from '../auth/token-error.js';
import { OciError } from '../oci/errors.js';
import { principalText } from '../policy/types.js';
import { sendError, toOciError } from '../registry/errors.js';

/** A session lasts this long at most (and never longer than the token service's refresh tokens). */
const SESSION_SECONDS = 12 * 3600;
/** A login form is two short strings. */
const BODY_MAX = 4096;
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The cookie's name: under TLS the `__Host-` prefix makes the browser refuse it without Secure, a Domain or Path=/. */
function cookieName(tls: boolean): string {
  return tls ? '__Host-sluice_session' : 'sluice_session';
}

/** The CSRF token of a session: derived from the cookie, which a page of another site can neither read nor send. */
export function csrfOf(session: string): string {
  return createHash('sha256').update('sluice csrf\0').update(session).digest('base64url');
}

function readCookie(req: FastifyRequest, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header || header.length > 16_384) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const v = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9._-]{1,4096}$/.test(v) ? v : undefined;
    }
  }
  return undefined;
}

function setCookie(reply: FastifyReply, tls: boolean, value: string, seconds: number): void {
  const attrs = [
    `${cookieName(tls)}=${value}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${seconds}`,
    ...(tls ? ['Secure'] : []),
  ];
  reply.header('set-cookie', attrs.join('; '));
}

async function readJson(req: FastifyRequest): Promise<Record<string, unknown>> {
  const type = String(req.headers['content-type'] ?? '');
  // A form of another site can post only simple content types; JSON needs a preflight it cannot pass.
  if (!/^application\/json\s*(;|$)/i.test(type))
    throw new OciError('UNSUPPORTED', 'send the login as application/json', undefined, 415);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req.raw) {
    size += (c as Buffer).length;
    if (size > BODY_MAX) throw new OciError('SIZE_INVALID', 'the login is too large', undefined, 413);
    chunks.push(c as Buffer);
  }
  try {
    const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // Answered below.
  }
  throw new OciError('UNSUPPORTED', 'the login is not a JSON object', undefined, 400);
}

/** True when a request's Origin (sent by browsers on every POST and DELETE) is this server's own, or absent. */
function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

/**
 * Web UI sessions over the registry's own users and robots: `POST /api/v1/session` checks the password as
 * `/token` does (same rate limits, same audit line on failure) and sets an HttpOnly, SameSite=Strict cookie
 * (Secure under TLS) holding a session token from the registry's token service. Every `/api/v1/` request
 * with that cookie and no Authorization header is decided for its user; every state-changing one must carry
 * the session's CSRF token in `X-CSRF-Token` and come from this origin.
 */
export function registerSessionRoutes(
  app: FastifyInstance,
  ready: Promise<AccessControl> | undefined,
  tls: boolean,
): void {
  const name = cookieName(tls);
  app.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith('/api/v1/') || !ready) return;
    const token = readCookie(req, name);
    const isLogin = req.url.split('?')[0] === '/api/v1/session' && req.method === 'POST';
    if (UNSAFE.has(req.method) && !sameOrigin(req)) return refuse(reply, 'the request comes from another origin');
    if (!token || req.headers.authorization) return;
    const ac = await ready;
    if (!ac.issuer) return;
    try {
      const sub = await ac.issuer.verifySession(token, (s) => ac.credential(principalFromSubject(s)));
      req.sessionPrincipal = principalFromSubject(sub);
    } catch (e) {
      if (!(e instanceof TokenError)) throw e;
      // An expired or revoked session is anonymous; the cookie goes.
      setCookie(reply, tls, '', 0);
      return;
    }
    if (UNSAFE.has(req.method) && !isLogin) {
      const sent = Buffer.from(String(req.headers['x-csrf-token'] ?? ''));
      const want = Buffer.from(csrfOf(token));
      if (sent.length !== want.length || !timingSafeEqual(sent, want))
        return refuse(reply, 'the CSRF token is missing or wrong');
    }
  });

  app.get('/api/v1/session', async (req, reply) => {
    const ac = ready ? await ready : undefined;
    const login = Boolean(ac?.issuer && (ac.htpasswd || ac.robots));
    const token = readCookie(req, name);
    const body =
      req.sessionPrincipal && token
        ? { login, user: principalText(req.sessionPrincipal), csrf: csrfOf(token) }
        : { login };
    reply.header('cache-control', 'no-store').send(body);
  });

  app.post('/api/v1/session', async (req, reply) => {
    try {
      const ac = ready ? await ready : undefined;
      if (!ac?.issuer || !(ac.htpasswd || ac.robots))
        throw new OciError('UNSUPPORTED', 'this registry has no users to log in as', undefined, 404);
      const form = await readJson(req);
      const user = typeof form['username'] === 'string' ? form['username'].slice(0, 256) : '';
      const password = typeof form['password'] === 'string' ? form['password'].slice(0, 1024) : '';
      let p: Awaited<ReturnType<typeof ac.checkCredentials>>;
      try {
        p = await ac.checkCredentials(user, password, req.ip);
      } catch (e) {
        if (!(e instanceof TooManyAttempts)) throw e;
        reply.header('retry-after', String(e.retryAfter));
        throw new OciError('TOOMANYREQUESTS', e.message);
      }
      const credential = p ? ac.credential(p) : undefined;
      if (!p || credential === undefined) {
        ac.audit?.write({
          principal: user || 'unknown',
          address: req.ip,
          action: 'login',
          decision: 'denied',
          reason: 'invalid username or password (web UI)',
          method: req.method,
          status: 401,
        });
        throw new OciError('UNAUTHORIZED', 'invalid username or password');
      }
      const seconds = Math.min(SESSION_SECONDS, ac.issuer.refreshExpiration);
      const token = await ac.issuer.issueSession(subjectOf(p), credential, seconds);
      setCookie(reply, tls, token, seconds);
      reply.header('cache-control', 'no-store').send({ login: true, user: principalText(p), csrf: csrfOf(token) });
    } catch (e) {
      if (!req.raw.readableEnded) req.raw.resume();
      sendError(reply, toOciError(e), false);
    }
  });

  app.delete('/api/v1/session', async (_req, reply) => {
    setCookie(reply, tls, '', 0);
    reply.code(204).send();
  });
}

function refuse(reply: FastifyReply, why: string): FastifyReply {
  sendError(reply, new OciError('DENIED', why, undefined, 403), false);
  return reply;
}
