import { createHash, type Hash } from 'node:crypto';

/** A content digest such as `sha256:<64 hex>`. */
export type Digest = string & { readonly __digest: unique symbol };

export type DigestAlgorithm = 'sha256' | 'sha512';

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
// The spec's grammar: algorithm-component ( separator algorithm-component )* ":" encoded.
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Thrown for text that is not a digest Sluice can verify. */
export class DigestError extends Error {}

/** True when the text is a well-formed digest of a supported algorithm. */
export function isDigest(text: string): text is Digest {
  // Checked without throwing: every request by tag asks this, and an Error's stack trace is costly.
  if (typeof text !== 'string' || !DIGEST_GRAMMAR.test(text)) return false;
  const i = text.indexOf(':');
  const algorithm = text.slice(0, i);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') return false;
  const hex = text.slice(i + 1);
  return hex.length === HEX_LENGTH[algorithm] && /^[a-f0-9]+$/.test(hex);
}

/** Parses and validates a digest; unknown algorithms and bad hex are rejected. */
export function parseDigest(text: string): { algorithm: DigestAlgorithm; hex: string; digest: Digest } {
  if (!DIGEST_GRAMMAR.test(text)) throw new DigestError(`invalid digest "${text}"`);
  const i = text.indexOf(':');
  const algorithm = text.slice(0, i);
  const hex = text.slice(i + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new DigestError(`unsupported digest algorithm "${algorithm}"`);
  }
  if (hex.length !== HEX_LENGTH[algorithm] || !/^[a-f0-9]+$/.test(hex)) {
    throw new DigestError(`invalid ${algorithm} digest "${text}"`);
  }
  return { algorithm, hex, digest: text as Digest };
}

/** Digest of bytes held in memory (manifests, configs: small things). */
export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest;
}

/** A running hash that yields a Digest at the end of a stream. */
export class Digester {
  private readonly hash: Hash;
  constructor(readonly algorithm: DigestAlgorithm = 'sha256') {
    this.hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
  }
  digest(): Digest {
    return `${this.algorithm}:${this.hash.digest('hex')}` as Digest;
  }
}

/** The tag cosign and the referrers tag schema use for artifacts of a digest: `sha256-<hex>`. */
export function digestTag(digest: Digest): string {
  return digest.replace(':', '-');
}
