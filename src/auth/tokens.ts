import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  importX509,
  jwtVerify,
  SignJWT,
  createRemoteJWKSet,
  type JWK,
  type JWTPayload,
  type CryptoKey,
  type JWTVerifyGetKey,
} from 'jose';
import { fileError, missingFolderError } from './file-errors.js';
import { TokenError } from './token-error.js';
import type { AccessEntry } from './scope.js';

type Key = CryptoKey | KeyObject;

/** Claims of an access or refresh token. */
export interface TokenClaims extends JWTPayload {
  access?: AccessEntry[];
  /** Present on refresh tokens only, so one can never be used as the other. */
  sluice_refresh?: true;
  /** On refresh tokens: a keyed hash of the credential they were issued under (see TokenIssuer.issueRefresh). */
  sluice_cred?: string;
  /** Present on web UI session tokens only: never an access token, never a refresh token. */
  sluice_ui?: true;
}

/** Verified token contents. */
export interface VerifiedToken {
  subject: string;
  access: AccessEntry[];
  expiresAt: number;
}

export { TokenError };

const KEY = 'auth.issuer.key';

/**
 * Reads an EC P-256 private key (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`, as `openssl ecparam -genkey`
 * writes it); creates one (PKCS#8, mode 0600) when the file does not exist, so the README's example works.
 */
async function loadOrCreateKey(path: string): Promise<{ key: KeyObject; created: boolean }> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fileError(KEY, path, e);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    try {
      // `wx`: two replicas starting at once must not overwrite each other's key.
      await writeFile(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    } catch (w) {
      const code = (w as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return loadOrCreateKey(path);
      if (code === 'ENOENT') throw missingFolderError(KEY, path);
      throw fileError(KEY, path, w);
    }
    return { key: privateKey, created: true };
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (e) {
    const why = /passphrase/i.test((e as Error).message)
      ? 'is encrypted; give an unencrypted key'
      : 'is not a PEM private key (PKCS#8 "PRIVATE KEY" or SEC1 "EC PRIVATE KEY")';
    throw new Error(`${KEY}: ${path} ${why}`);
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
    throw new Error(
      `${KEY}: ${path} is a ${key.asymmetricKeyType}${curve ? ` ${curve}` : ''} key; tokens are signed with ES256, which needs an EC P-256 (prime256v1) key`,
    );
  }
  return { key, created: false };
}

/** Sluice's own token service: ES256 JWTs with a `kid`, short-lived, holding only granted actions. */
export class TokenIssuer {
  private constructor(
    private readonly privateKey: KeyObject,
    private readonly publicKey: KeyObject,
    private readonly bindingKey: Buffer,
    readonly kid: string,
    readonly publicJwk: JWK,
    readonly issuer: string,
    /** Service names this registry answers to; the first is the one challenges carry. */
    readonly services: string[],
    readonly expiration: number,
    readonly refreshExpiration: number,
    /** The key file made on this start, if one was. */
    readonly createdKey: string | undefined,
  ) {}

  /** Loads the key at `keyPath` (made when missing), or makes a key that lives as long as the process. */
  static async create(opts: {
    keyPath?: string;
    issuer: string;
    service: string | string[];
    expiration: number;
    refreshExpiration: number;
  }): Promise<TokenIssuer> {
    let priv: KeyObject;
    let created = false;
    if (opts.keyPath) ({ key: priv, created } = await loadOrCreateKey(opts.keyPath));
    else priv = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const pub = createPublicKey(priv);
    const publicJwk = await exportJWK(pub);
    const kid = await calculateJwkThumbprint(publicJwk);
    // Refresh tokens carry a keyed hash of the credential, never the credential's own hash: derived from the
    // signing key, so it survives restarts exactly as long as the tokens themselves do.
    const bindingKey = createHash('sha256')
      .update('sluice refresh-token binding\0')
      .update(priv.export({ type: 'pkcs8', format: 'der' }))
      .digest();
    const services = Array.isArray(opts.service) ? opts.service : [opts.service];
    return new TokenIssuer(
      priv,
      pub,
      bindingKey,
      kid,
      { ...publicJwk, kid, alg: 'ES256', use: 'sig' },
      opts.issuer,
      services,
      opts.expiration,
      opts.refreshExpiration,
      created ? opts.keyPath : undefined,
    );
  }

  /** The service name challenges carry and tokens are signed for by default. */
  get service(): string {
    return this.services[0]!;
  }

  /** The audience to sign for: the service a client asked for when it is one of ours, else our own. */
  audienceFor(requested: string | undefined): string {
    return requested !== undefined && this.services.includes(requested) ? requested : this.service;
  }

  /** Signs an access token for a subject ('' for anonymous), for the requested service when it is one of ours. */
  async issue(
    subject: string,
    access: AccessEntry[],
    service?: string,
    now = Math.floor(Date.now() / 1000),
  ): Promise<{ token: string; expiresIn: number; issuedAt: string }> {
    const token = await new SignJWT({ access })
      .setProtectedHeader({ alg: 'ES256', kid: this.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(subject)
      .setAudience(this.audienceFor(service))
      .setIssuedAt(now)
      .setNotBefore(now - 1)
      .setExpirationTime(now + this.expiration)
      .setJti(randomUUID())
      .sign(this.privateKey);
    return { token, expiresIn: this.expiration, issuedAt: new Date(now * 1000).toISOString() };
  }

  private bind(credential: string): string {
    return createHmac('sha256', this.bindingKey).update(credential).digest('base64url');
  }

  /**
   * Signs a refresh token for the OAuth2 flow, bound to the credential it was issued under (a fingerprint of
   * the stored password hash or robot token): any change to that credential revokes it.
   */
  async issueRefresh(subject: string, credential: string, now = Math.floor(Date.now() / 1000)): Promise<string> {
    return this.signBound({ sluice_refresh: true }, subject, credential, now, this.refreshExpiration);
  }

  /** Signs a token bound to a credential (`sluice_cred`), for this service, with its kind's marker claim. */
  private signBound(
    kind: Record<string, boolean>,
    subject: string,
    credential: string,
    now: number,
    seconds: number,
  ): Promise<string> {
    return new SignJWT({ ...kind, sluice_cred: this.bind(credential) })
      .setProtectedHeader({ alg: 'ES256', kid: this.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(subject)
      .setAudience(this.service)
      .setIssuedAt(now)
      .setExpirationTime(now + seconds)
      .setJti(randomUUID())
      .sign(this.privateKey);
  }

  private async check(token: string): Promise<TokenClaims> {
    try {
      const { payload } = await jwtVerify<TokenClaims>(token, this.publicKey, {
        algorithms: ['ES256'],
        issuer: this.issuer,
        audience: this.services,
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
    if (p.sluice_ui) throw new TokenError('token rejected: a web UI session is not an access token');
    return { subject: p.sub ?? '', access: Array.isArray(p.access) ? p.access : [], expiresAt: p.exp! };
  }

  /**
   * Verifies a refresh token and returns its subject; `credentialOf` gives the subject's current credential
   * fingerprint (undefined when the account is gone), which must be the one the token was issued under.
   */
  async verifyRefresh(token: string, credentialOf: (subject: string) => string | undefined): Promise<string> {
    const p = await this.check(token);
    if (!p.sluice_refresh) throw new TokenError('token rejected: not a refresh token');
    return this.boundSubject(p, credentialOf);
  }

  /** The subject of a token bound to a credential (refresh, session), if that credential is still the account's. */
  private boundSubject(p: TokenClaims, credentialOf: (subject: string) => string | undefined): string {
    const sub = p.sub ?? '';
    const now = credentialOf(sub);
    if (now === undefined) throw new TokenError('token rejected: the account no longer exists or has expired');
    const want = Buffer.from(this.bind(now));
    const got = Buffer.from(typeof p.sluice_cred === 'string' ? p.sluice_cred : '');
    if (got.length !== want.length || !timingSafeEqual(got, want))
      throw new TokenError('token rejected: the credentials changed since it was issued');
    return sub;
  }

  /**
   * Signs a web UI session for the cookie: bound to the credential like a refresh token (a changed password
   * ends every session), marked so it is accepted as nothing else, and living `seconds`.
   */
  async issueSession(
    subject: string,
    credential: string,
    seconds: number,
    now = Math.floor(Date.now() / 1000),
  ): Promise<string> {
    return this.signBound({ sluice_ui: true }, subject, credential, now, seconds);
  }

  /** Verifies a web UI session and returns its subject; as `verifyRefresh`, the credential must be unchanged. */
  async verifySession(token: string, credentialOf: (subject: string) => string | undefined): Promise<string> {
    const p = await this.check(token);
    if (!p.sluice_ui) throw new TokenError('token rejected: not a web UI session');
    return this.boundSubject(p, credentialOf);
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

async function readJwks(path: string): Promise<{ keys: JWK[] }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fileError('auth.token.jwks', path, e);
  }
  try {
    const set = JSON.parse(text) as { keys?: JWK[] };
    if (!Array.isArray(set.keys)) throw new Error('no "keys" array');
    return set as { keys: JWK[] };
  } catch (e) {
    throw new Error(`auth.token.jwks: ${path} is not a JWK set (${(e as Error).message})`);
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
  static async create(cfg: {
    realm: string;
    service: string;
    issuer: string;
    rootcertbundle?: string;
    jwks?: string;
    signingalgorithms?: string[];
  }): Promise<ExternalTokenVerifier> {
    const algorithms = cfg.signingalgorithms ?? [
      'ES256',
      'ES384',
      'ES512',
      'RS256',
      'RS384',
      'RS512',
      'PS256',
      'EdDSA',
    ];
    if (cfg.jwks) {
      const getKey = /^https?:\/\//.test(cfg.jwks)
        ? createRemoteJWKSet(new URL(cfg.jwks))
        : createLocalJWKSet(await readJwks(cfg.jwks));
      return new ExternalTokenVerifier(getKey, cfg.issuer, cfg.service, cfg.realm, algorithms);
    }
    if (!cfg.rootcertbundle) throw new Error('auth.token needs rootcertbundle or jwks');
    const pem = await readFile(cfg.rootcertbundle, 'utf8').catch((e: unknown) => {
      throw fileError('auth.token.rootcertbundle', cfg.rootcertbundle!, e);
    });
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
        const { payload } =
          typeof k === 'function'
            ? await jwtVerify<TokenClaims>(token, k, opts)
            : await jwtVerify<TokenClaims>(token, k, opts);
        return {
          subject: payload.sub ?? '',
          access: Array.isArray(payload.access) ? payload.access : [],
          expiresAt: payload.exp!,
        };
      } catch (e) {
        last = e;
      }
    }
    throw new TokenError(`token rejected: ${describeJoseError(last)}`);
  }
}
