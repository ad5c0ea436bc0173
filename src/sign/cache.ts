import type { KeylessCheck } from './keyless.js';
import type { NotationCheck } from './notation.js';
import type { SignaturePayload } from './types.js';

/** What checking one signature with one key found: not made by the key, or made by it with this payload (or an unreadable one). */
export type SignatureCheck =
  | { signed: false }
  | { signed: true; payload: SignaturePayload }
  | { signed: true; payloadError: string };
/** What the cache holds: a check with a key, a keyless check against a trusted root, or a notation check. */
export type CachedCheck = SignatureCheck | KeylessCheck | NotationCheck;

/**
 * A small LRU of signature checks keyed by (manifest digest, signature id, key fingerprint): the
 * expensive part of verification (ECDSA and payload parsing) is done once per signature and key,
 * so a warm check is a few map lookups.
 */
export class VerificationCache {
  private readonly entries = new Map<string, CachedCheck>();
  hits = 0;
  misses = 0;

  constructor(readonly capacity = 10_000) {}

  /** The cache key for a manifest, a signature and a key. */
  static key(manifestDigest: string, signatureId: string, keyFingerprint: string): string {
    return `${manifestDigest}|${signatureId}|${keyFingerprint}`;
  }

  /** The cached check, refreshed as most recently used. */
  get(key: string): CachedCheck | undefined {
    const v = this.entries.get(key);
    if (v === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(key);
    this.entries.set(key, v);
    return v;
  }

  /** Stores a check, dropping the least recently used entry when full. */
  set(key: string, value: CachedCheck): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}

/** The process-wide cache verification uses unless given another. */
export const defaultVerificationCache = new VerificationCache();
