// GETs the S3 SDK signs but this driver sends: presigned redirect URLs, and long ranges pumped on a connection
// of their own (http-pump.ts) rather than through the SDK's stream.
import type { Writable } from 'node:stream';
import { HttpStatusError, nothingWritten, pumpGet, type GetRequest } from './http-pump.js';
import type { S3Bucket } from './s3-bucket.js';

/**
 * sendTo reads ranges at least this long on a connection of their own into one reused buffer (http-pump.ts);
 * shorter ones take the SDK's pooled connections, where a new connection (and TLS handshake) would cost more
 * than the garbage their reads leave.
 */
export const DIRECT_MIN = 1 << 20;

/** The parts of the SDK's signed HttpRequest a GET is sent from. */
interface SdkRequest {
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
}

/** Carries a signed request out of the SDK's middleware stack, which then sends nothing. An Error, so that the SDK rethrows it as it is. */
class SignedOnly extends Error {
  constructor(readonly request: SdkRequest) {
    super('signed, not sent');
  }
}

/** The SDK's escaping of query parts (RFC 3986: encodeURIComponent leaves !'()* alone). */
function escapeQuery(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function toGetRequest(r: SdkRequest): GetRequest {
  const query = Object.entries(r.query ?? {}).flatMap(([k, v]) =>
    v === null ? [escapeQuery(k)] : (Array.isArray(v) ? v : [v]).map((x) => `${escapeQuery(k)}=${escapeQuery(x)}`),
  );
  const url = new URL(
    `${r.protocol}//${r.hostname}${r.port ? `:${r.port}` : ''}${r.path}${query.length ? `?${query.join('&')}` : ''}`,
  );
  return { url, headers: r.headers };
}

type Presigner = typeof import('@aws-sdk/s3-request-presigner');
let presignerLoad: Promise<Presigner> | undefined;

/** A presigned GetObject URL of `key` (SigV4 query signature, valid `expiresInSeconds`). */
export async function presignedGet(b: S3Bucket, key: string, expiresInSeconds: number): Promise<string> {
  const { sdk, c } = await b.connect();
  presignerLoad ??= import('@aws-sdk/s3-request-presigner');
  const { getSignedUrl } = await presignerLoad;
  return getSignedUrl(c, new sdk.GetObjectCommand({ Bucket: b.name, Key: key }), {
    expiresIn: expiresInSeconds,
  });
}

/**
 * A GetObject of `key` as the SDK would send it (endpoint, addressing style, credentials, SigV4 headers),
 * taken from its middleware stack right after signing, unsent.
 */
async function signedGet(b: S3Bucket, key: string, range: string): Promise<GetRequest> {
  const { sdk, c } = await b.connect();
  const cmd = new sdk.GetObjectCommand({ Bucket: b.name, Key: key, Range: range });
  // Typed loosely, as for contentMd5ForDeletes: the middleware types come from @smithy/types.
  (
    cmd.middlewareStack as unknown as {
      addRelativeTo(m: unknown, o: { relation: 'after'; toMiddleware: string; name: string }): void;
    }
  ).addRelativeTo(() => (args: { request: SdkRequest }) => Promise.reject(new SignedOnly(args.request)), {
    relation: 'after',
    toMiddleware: 'httpSigningMiddleware',
    name: 'sluiceSignedOnly',
  });
  try {
    await c.send(cmd);
  } catch (e) {
    if (e instanceof SignedOnly) return toGetRequest(e.request);
    throw e;
  }
  throw new Error('the SDK sent a GetObject that was only to be signed');
}

/**
 * Writes a range of the object at `key` into `out` with a presigned GET of its own, copied through one reused
 * buffer (see http-pump.ts). Returns false, having written nothing, when the SDK should be asked instead.
 */
export async function pumpRange(
  b: S3Bucket,
  key: string,
  out: Writable,
  offset: number,
  length: number,
): Promise<boolean> {
  try {
    await pumpGet(await signedGet(b, key, `bytes=${offset}-${offset + length - 1}`), out, length, offset);
    return true;
  } catch (e) {
    if (e instanceof HttpStatusError && e.status === 404)
      throw Object.assign(new Error(`no such object: ${key}`), { code: 'ENOENT' });
    // Nothing was written: a busy or failing server (503 SlowDown, 500), a refused or broken connection, a
    // stall before the answer: the SDK asks again, with its retries and backoff. A refusal (403) stands.
    const refused = e instanceof HttpStatusError && e.status < 500 && e.status !== 429;
    if (refused || !nothingWritten(e)) throw e;
    return false;
  }
}
