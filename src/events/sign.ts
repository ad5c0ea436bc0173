import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks signatures (www.standardwebhooks.com): HMAC-SHA256 over `${id}.${timestamp}.${body}`
 * with the secret's bytes (base64 after `whsec_`), sent as `webhook-signature: v1,<base64>`. Written here
 * because the `standardwebhooks` package is not installed; this is all of the scheme a sender needs.
 */

/** The key bytes of a `whsec_…` secret. */
export function secretBytes(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
}

/** The `v1,<base64>` signature of one delivery. */
export function signature(secret: string, id: string, timestamp: number, body: string | Buffer): string {
  const mac = createHmac('sha256', secretBytes(secret));
  mac.update(`${id}.${timestamp}.`);
  mac.update(body);
  return `v1,${mac.digest('base64')}`;
}

/** The three headers of a signed delivery. */
export function signedHeaders(
  secret: string,
  id: string,
  body: string | Buffer,
  now = Date.now(),
): Record<string, string> {
  const timestamp = Math.floor(now / 1000);
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signature(secret, id, timestamp, body),
  };
}

/** True when a delivery's headers carry a valid signature no older (or newer) than `toleranceSeconds`. */
export function verifySignature(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: string | Buffer,
  toleranceSeconds = 300,
  now = Date.now(),
): boolean {
  const one = (k: string) => {
    const v = headers[k];
    return Array.isArray(v) ? v[0] : v;
  };
  const id = one('webhook-id');
  const ts = Number(one('webhook-timestamp'));
  const sigs = one('webhook-signature');
  if (!id || !Number.isSafeInteger(ts) || !sigs) return false;
  if (Math.abs(now / 1000 - ts) > toleranceSeconds) return false;
  const expected = Buffer.from(signature(secret, id, ts, body));
  // The header may list several signatures (a secret being rotated), separated by spaces.
  return sigs.split(' ').some((s) => {
    const got = Buffer.from(s);
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}
