import type { FastifyReply, FastifyRequest } from 'fastify';
import { OciError } from '../oci/errors.js';
import { sendError, toOciError } from '../registry/errors.js';

/** Answers JSON that no cache keeps (every answer depends on who asks). */
export function json(reply: FastifyReply, body: unknown, status = 200): void {
  reply
    .code(status)
    .header('content-type', 'application/json; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(JSON.stringify(body));
}

/** Wraps a route so every failure answers in the OCI error format, as the registry API does. */
export function route(fn: (req: FastifyRequest, reply: FastifyReply) => Promise<void>) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    try {
      await fn(req, reply);
    } catch (e) {
      const err = toOciError(e);
      if (err.code === 'UNKNOWN') req.log.error({ err: e }, 'api request failed');
      if (!reply.sent) sendError(reply, err, false);
    }
  };
}

/** A 400 naming the parameter that is wrong. */
export function badRequest(message: string): never {
  throw new OciError('UNSUPPORTED', message, undefined, 400);
}

/** One query parameter as text: absent, or given once (a parameter given twice is refused). */
export function textParam(q: Record<string, unknown>, key: string, max = 256): string | undefined {
  const v = q[key];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') badRequest(`${key}= given more than once`);
  if (v.length > max) badRequest(`${key}= is longer than ${max} characters`);
  return v;
}
