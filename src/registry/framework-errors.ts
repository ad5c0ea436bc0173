import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { OciError } from '../oci/errors.js';
import { sendError } from './errors.js';

// Requests that fail before a route runs (Node's parser, fastify's router and body parsing) get the OCI
// error JSON like every other refusal; fastify's own answers read `{"error":"Bad Request",…}`.

/** fastify's `frameworkErrors`: a path that is not valid percent-encoding, or another router failure. */
export function frameworkErrors(error: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const err =
    error.code === 'FST_ERR_BAD_URL'
      ? new OciError('NAME_INVALID', 'the request path is not valid percent-encoding')
      : new OciError('UNSUPPORTED', error.message, undefined, 400);
  reply.header('docker-distribution-api-version', 'registry/2.0');
  sendError(reply, err, req.method === 'HEAD');
}

/**
 * The app's error handler, for what fails outside the `/v2` handler's own catch: a Content-Type fastify
 * cannot parse (415), a hook that throws. A client's fault keeps its 4xx status; anything else is UNKNOWN.
 */
export function errorHandler(error: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  if (error instanceof OciError) {
    sendError(reply, error, req.method === 'HEAD');
    return;
  }
  const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
  if (status === 500) req.log.error({ err: error }, 'request failed');
  const err =
    status === 500
      ? new OciError('UNKNOWN', 'internal error')
      : new OciError('UNSUPPORTED', `the request cannot be read: ${error.message.toLowerCase()}`, undefined, status);
  sendError(reply, err, req.method === 'HEAD');
}

/**
 * fastify's `clientErrorHandler`: answers a request Node's HTTP parser refused (malformed framing, a body
 * on a method that takes none, headers too large, a timeout), then closes the connection.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection has nobody left to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let error: OciError;
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT')
    error = new OciError('UNKNOWN', 'the request did not arrive in time', undefined, 408);
  else if (err.code === 'HPE_HEADER_OVERFLOW')
    error = new OciError('UNSUPPORTED', 'the request headers are too large', undefined, 431);
  else
    error = new OciError('UNSUPPORTED', `the request is not valid HTTP: ${err.code ?? 'parse error'}`, undefined, 400);
  const body = JSON.stringify(error.toJSON());
  if (socket.writable) {
    const head = [
      `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}`,
      `content-length: ${Buffer.byteLength(body)}`,
      'content-type: application/json; charset=utf-8',
      'docker-distribution-api-version: registry/2.0',
      'connection: close',
    ];
    socket.write(`${head.join('\r\n')}\r\n\r\n${body}`);
  }
  socket.destroy(err);
}
