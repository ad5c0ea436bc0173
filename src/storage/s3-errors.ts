// Reads an S3 SDK error: its HTTP status and code, and which of the answers the driver handles it is.

/** The S3 error code an SDK error carries (`NoSuchKey`, `NotImplemented`, ...). */
export function errName(e: unknown): string | undefined {
  return (e as { name?: string; Code?: string } | undefined)?.name;
}

/** The HTTP status an SDK error was answered with. */
export function statusOf(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

/** S3's answer for an absent object. */
export function isNotFound(e: unknown): boolean {
  return statusOf(e) === 404 || errName(e) === 'NoSuchKey' || errName(e) === 'NotFound';
}

/** A server's answer to a call it does not have (s3rver: 501 NotImplemented; some answer 405). */
export function isNotImplemented(e: unknown): boolean {
  return (
    statusOf(e) === 501 || statusOf(e) === 405 || errName(e) === 'NotImplemented' || errName(e) === 'MethodNotAllowed'
  );
}

/** S3's answer to `If-None-Match: *` when the object exists. */
export function isPreconditionFailed(e: unknown): boolean {
  return statusOf(e) === 412 || errName(e) === 'PreconditionFailed';
}
