import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importPKCS8,
  importX509,
  jwtVerify,
  SignJWT,
  createRemoteJWKSet,
  type JWK,
  type JWTPayload,
  type CryptoKey,
  type KeyObject,
  type JWTVerifyGetKey,
} from 'jose';
import type { AccessEntry } from './scope.js';

type Key = CryptoKey | KeyObject;

/** Claims of an access or refresh token. */
export interface TokenClaims extends JWTPayload {
  access?: AccessEntry[];
  /** Present on refresh tokens only, so one can never be used as the other. */
  sluice_refresh?: true;
}

/** Verified token contents. */
export interface VerifiedToken {
  subject: string;
  access: AccessEntry[];
  expiresAt: number;
}

/** Thrown when a token is not acceptable; the message is safe to show (never the token). */
export class TokenError extends Error {}

/** Sluice's own token service: ES256 JWTs with a `kid`, short-lived, holding only granted actions. */
export class TokenIssuer {
  private constructor(
    private readonly privateKey: Key,
    private readonly publicKey: Key,
    readonly kid: string,
    readonly publicJwk: JWK,
    readonly issuer: string,
    readonly service: string,
    readonly expiration: number,
    readonly refreshExpiration: number,
  ) {}

  /** Loads the PKCS#8 PEM key at `keyPath`, or makes a key that lives as long as the process. */
  static async create(opts: { keyPath?: string; issuer: string; service: string; expiration: number; refreshExpiration: number }): Promise<TokenIssuer> {
    let priv: Key;
    let pub: Key;
    if (opts.keyPath) {
      const pem = await readFile(opts.keyPath, 'utf8');
      priv = await importPKCS8(pem, 'ES256', { extractable: true });
      const jwk = await exportJWK(priv);
      delete jwk.d;
      const { importJWK } = await import('jose');
      pub = (await importJWK({ ...jwk, alg: 'ES256' }, 'ES256')) as Key;
    } else {
      const kp = await generateKeyPair('ES256', { extractable: true });
      priv = kp.privateKey;
      pub = kp.publicKey;
    }
    const publicJwk = await exportJWK(pub);
    const kid = await calculateJwkThumbprint(publicJwk);
    return new TokenIssuer(priv, pub, kid, { ...publicJwk, kid, alg: 'ES256', use: 'sig' }, opts.issuer, opts.service, opts.expiration, opts.refreshExpiration);
  }

  /** Signs an access token for a subject ('' for anonymous). */
  async issue(subject: string, access: AccessEntry[], now = Math.floor(Date.now() / 1000)): Promise<{ token: string; expiresIn: number; issuedAt: string }> {
    const token = await new SignJWT({ access })
      .setProtectedHeader({ alg: 'ES256', kid: this.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(subject)
      .setAudience(this.service)
      .setIssuedAt(now)
      .setNotBefore(now - 1)
      .setExpirationTime(now + this.expiration)
      .setJti(randomUUID())
      .sign(this.privateKey);
    return { token, expiresIn: this.expiration, issuedAt: new Date(now * 1000).toISOString() };
  }

  /** Signs a refresh token for the OAuth2 flow. */
  async issueRefresh(subject: string, now = Math.floor(Date.now() / 1000)): Promise<string> {
    return new SignJWT({ sluice_refresh: true })
      .setProtectedHeader({ alg: 'ES256', kid: this.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(subject)
      .setAudience(this.service)
      .setIssuedAt(now)
      .setExpirationTime(now + this.refreshExpiration)
      .setJti(randomUUID())
      .sign(this.privateKey);
  }

  private async check(token: string): Promise<TokenClaims> {
    try {
      const { payload } = await jwtVerify<TokenClaims>(token, this.publicKey, {
        algorithms: ['ES256'],
        issuer: this.issuer,
        audience: this.service,
        requiredClaims: ['exp', 'sub'],
      });
      return payload;
    } catch (e) {
      throw new TokenError(`token rejected: ${describeJoseError(e)}`);
    }
  }

  /** Verifies an access token: signature, algorithm, issuer, audience, expiry. */
  async verify(token: string): Promise<VerifiedToken> {
    const p = await this.check(token);
    if (p.sluice_refresh) throw new TokenError('token rejected: a refresh token is not an access token');
    return { subject: p.sub ?? '', access: Array.isArray(p.access) ? p.access : [], expiresAt: p.exp! };
  }

  /** Verifies a refresh token and returns its subject. */
  async verifyRefresh(token: string): Promise<string> {
    const p = await this.check(token);
    if (!p.sluice_refresh) throw new TokenError('token rejected: not a refresh token');
    return p.sub ?? '';
  }
}

function describeJoseError(e: unknown): string {
  const code = (e as { code?: string }).code;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad signature';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'algorithm not allowed';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return `claim ${(e as { claim?: string }).claim ?? ''} invalid`;
    default:
      return 'malformed or not verifiable';
  }
}

/** Verifies tokens from an external issuer (Distribution's `auth.token`): root certificates or a JWKS. */
export class ExternalTokenVerifier {
  private constructor(
    private readonly getKey: JWTVerifyGetKey | Key[],
    readonly issuer: string,
    readonly service: string,
    readonly realm: string,
    readonly algorithms: string[],
  ) {}

  /** Reads `rootcertbundle` (PEM certificates) or `jwks` (a file or an https URL). */
  static async create(cfg: { realm: string; service: string; issuer: string; rootcertbundle?: string; jwks?: string; signingalgorithms?: string[] }): Promise<ExternalTokenVerifier> {
    const algorithms = cfg.signingalgorithms ?? ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'EdDSA'];
    if (cfg.jwks) {
      const getKey = /^https?:\/\//.test(cfg.jwks)
        ? createRemoteJWKSet(new URL(cfg.jwks))
        : createLocalJWKSet(JSON.parse(await readFile(cfg.jwks, 'utf8')) as { keys: JWK[] });
      return new ExternalTokenVerifier(getKey, cfg.issuer, cfg.service, cfg.realm, algorithms);
    }
    if (!cfg.rootcertbundle) throw new Error('auth.token needs rootcertbundle or jwks');
    const pem = await readFile(cfg.rootcertbundle, 'utf8');
    const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (certs.length === 0) throw new Error(`auth.token.rootcertbundle ${cfg.rootcertbundle} holds no certificate`);
    const keys: Key[] = [];
    for (const c of certs) {
      for (const alg of algorithms) {
        try {
          keys.push(await importX509(c, alg));
          break;
        } catch {
          // Try the next algorithm family for this certificate's key type.
        }
      }
    }
    return new ExternalTokenVerifier(keys, cfg.issuer, cfg.service, cfg.realm, algorithms);
  }

  /** Verifies a token from the external issuer. */
  async verify(token: string): Promise<VerifiedToken> {
    const opts = { algorithms: this.algorithms, issuer: this.issuer, audience: this.service, requiredClaims: ['exp'] };
    let last: unknown;
    const keys = Array.isArray(this.getKey) ? this.getKey : [this.getKey];
    for (const k of keys) {
      try {
        const { payload } = typeof k === 'function' ? await jwtVerify<TokenClaims>(token, k, opts) : await jwtVerify<TokenClaims>(token, k, opts);
        return { subject: payload.sub ?? '', access: Array.isArray(payload.access) ? payload.access : [], expiresAt: payload.exp! };
      } catch (e) {
        last = e;
      }
    }
    throw new TokenError(`token rejected: ${describeJoseError(last)}`);
  }
}
