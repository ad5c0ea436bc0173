import type { FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { isDigest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { isTag } from '../oci/name.js';
import { compilePolicy, decide, type Policy } from '../policy/evaluate.js';
import {
  ACTIONS,
  ANONYMOUS,
  isAction,
  principalText,
  type Action,
  type Decision,
  type Principal,
  type Target,
} from '../policy/types.js';
import { enforcedPolicySpec } from '../policy/config.js';
import type { AccessRequest } from './access-request.js';
import { parseDuration } from '../config/duration.js';
import { FailureLimiter } from './attempts.js';
import { AuditLog } from './audit.js';
import { PoolBusyError } from './bcrypt-pool.js';
import { HtpasswdStore } from './htpasswd.js';
import { ROBOT_PREFIX, RobotStore } from './robots.js';
import { basicChallenge, bearerChallenge, scopeActionFor, type AccessEntry } from './scope.js';
import { ExternalTokenVerifier, TokenError, TokenIssuer } from './tokens.js';

/** Who a request comes from and how that was established. */
export interface Identity {
  principal: Principal;
  via: 'none' | 'basic' | 'bearer' | 'external' | 'session';
  /** What a bearer token grants; absent for Basic and anonymous requests (the policy decides those). */
  grants?: AccessEntry[];
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The WWW-Authenticate challenge to send with a 401. */
    authChallenge?: string;
    /** The last access decision, for the audit log. */
    auditAccess?: { principal: string; action: string; repository?: string; reference?: string; rule?: string };
    /** Seconds a 429 asks the client to wait (sent as Retry-After). */
    retryAfter?: number;
    /** The user name of a refused login (never the password), for its event. */
    loginUser?: string;
    /** Who a verified web UI session cookie names; set only on `/api/v1/` requests (src/ui/session.ts). */
    sessionPrincipal?: Principal;
  }
}

/** Thrown when a client or a user has used up its failed logins, or password checks are swamped: a 429. */
export class TooManyAttempts extends Error {
  constructor(
    message: string,
    readonly retryAfter: number,
  ) {
    super(message);
  }
}

/** Where challenges send clients for tokens, and whether the Host header may decide it. */
interface RealmSettings {
  /** A configured realm (auth.issuer.realm, or auth.token.realm for an external issuer). */
  fixed?: string;
  /** auth.issuer.realmfromhost: derive from the Host header. */
  fromHost: boolean;
  /** http.host: the URL clients reach this registry at. */
  publicUrl?: string;
}

const identities = new WeakMap<FastifyRequest, Identity>();

/** The principal a token subject names: '' is anonymous, `robot$x` a robot, anything else a user. */
export function principalFromSubject(sub: string): Principal {
  if (!sub) return ANONYMOUS;
  if (sub.startsWith(ROBOT_PREFIX)) return { kind: 'robot', name: sub.slice(ROBOT_PREFIX.length) };
  return { kind: 'user', name: sub };
}

/** The token subject of a principal. */
export function subjectOf(p: Principal): string {
  return p.kind === 'anonymous' ? '' : p.kind === 'robot' ? `${ROBOT_PREFIX}${p.name}` : p.name;
}

function targetOf(repository: string | undefined, reference: string | undefined): Target {
  const t: Target = {};
  if (repository !== undefined) t.repository = repository;
  if (reference !== undefined && isDigest(reference)) t.digest = reference;
  else if (reference !== undefined && isTag(reference)) t.tag = reference;
  return t;
}

/** Authentication, the policy, the token service and the audit log, as one registry sees them. */
export class AccessControl {
  private constructor(
    readonly policy: Policy,
    readonly htpasswd: HtpasswdStore | undefined,
    readonly robots: RobotStore | undefined,
    readonly issuer: TokenIssuer | undefined,
    readonly external: ExternalTokenVerifier | undefined,
    readonly audit: AuditLog | undefined,
    private readonly realmSettings: RealmSettings,
    private readonly basicRealm: string,
    private readonly byAddress: FailureLimiter,
    private readonly byUser: FailureLimiter,
  ) {}

  /** Builds access control from a config; reads the htpasswd, robot and key files. */
  static async create(config: Config): Promise<AccessControl> {
    const auth = config.auth;
    const robots = auth?.robots ? new RobotStore(auth.robots.path) : undefined;
    const external = auth?.token ? await ExternalTokenVerifier.create(auth.token) : undefined;
    // Made last among the files: it starts no workers until the first password check, but is the one to close.
    const htpasswd = auth?.htpasswd ? new HtpasswdStore(auth.htpasswd.path) : undefined;
    const iss = auth?.issuer;
    const ownIssuer = (iss?.enabled ?? true) && !(external && !htpasswd && !robots);
    const issuer = ownIssuer
      ? await TokenIssuer.create({
          keyPath: iss?.key,
          issuer: iss?.issuer ?? 'sluice',
          service: iss?.service ?? 'sluice',
          expiration: iss?.expiration ?? 300,
          refreshExpiration: iss?.refreshexpiration ?? 86400,
        }).catch(async (e: unknown) => {
          await htpasswd?.close();
          throw e;
        })
      : undefined;
    const hasCredentials = Boolean(htpasswd || robots || external);
    // With no way to log in and no rules, access control is only there for the audit log.
    const spec = enforcedPolicySpec(config.access, { hasCredentials });
    let audit: AuditLog | undefined;
    try {
      audit = config.audit?.enabled ? await AuditLog.open(config.audit.path) : undefined;
    } catch (e) {
      await htpasswd?.close();
      throw e;
    }
    const realm: RealmSettings = {
      fixed: iss?.realm ?? (external && !issuer ? auth?.token?.realm : undefined),
      fromHost: iss?.realmfromhost ?? false,
      publicUrl: config.http.host,
    };
    const limit = auth?.ratelimit ?? { failures: 10, window: '1m' };
    const windowMs = parseDuration(limit.window);
    return new AccessControl(
      compilePolicy(spec),
      htpasswd,
      robots,
      issuer,
      external,
      audit,
      realm,
      auth?.htpasswd?.realm ?? 'sluice',
      new FailureLimiter(limit.failures, windowMs),
      new FailureLimiter(limit.failures, windowMs),
    );
  }

  /** Stops the password-checking workers and closes the audit log. */
  async close(): Promise<void> {
    await this.htpasswd?.close();
    await this.audit?.close();
  }

  /** Whether any caller can log in at all (otherwise `/v2/` stays open to anonymous callers). */
  get hasCredentials(): boolean {
    return Boolean(this.htpasswd || this.robots || this.external);
  }

  /** The token service name challenges carry. */
  get service(): string {
    return this.issuer?.service ?? this.external?.service ?? 'sluice';
  }

  /**
   * The token endpoint URL for challenges: configured, or this server's own `/token` at `http.host` or the
   * address the connection arrived at. Never the Host header unless configured: it is the client's to write,
   * and clients send their passwords to the realm.
   */
  realm(req: FastifyRequest): string {
    const r = this.realmSettings;
    if (r.fixed) return r.fixed;
    if (r.fromHost && req.headers.host) return `${req.protocol}://${req.headers.host}/token`;
    if (r.publicUrl) return `${r.publicUrl.replace(/\/+$/, '')}/token`;
    const local = (req.socket.localAddress ?? '127.0.0.1').replace(/^::ffff:(?=\d+\.)/, '');
    const host = local.includes(':') ? `[${local}]` : local;
    return `${req.protocol}://${host}:${req.socket.localPort}/token`;
  }

  /** The challenge a 401 carries. */
  challenge(req: FastifyRequest, scopes: AccessEntry[], error?: string): string {
    if (this.issuer || this.external) return bearerChallenge(this.realm(req), this.service, scopes, error);
    return basicChallenge(this.basicRealm);
  }

  /**
   * Checks a username and password (or robot token) from a client address; the same work is done whether the
   * account exists or not. Throws TooManyAttempts once the address or the user has failed too often in the
   * window, before any password work, whatever the password: a guess must not learn anything from a 429.
   */
  async checkCredentials(username: string, password: string, address: string): Promise<Principal | undefined> {
    const addressKey = `a\0${address}`;
    const userKey = `u\0${username}`;
    const wait = this.byAddress.retryAfter(addressKey) ?? this.byUser.retryAfter(userKey);
    if (wait !== undefined) throw new TooManyAttempts('too many failed logins; try again later', wait);
    let p: Principal | undefined;
    if (username.startsWith(ROBOT_PREFIX)) {
      const name = username.slice(ROBOT_PREFIX.length);
      p = this.robots?.verify(name, password) ? { kind: 'robot', name } : undefined;
    } else if (this.htpasswd) {
      try {
        p = (await this.htpasswd.verify(username, password)) ? { kind: 'user', name: username } : undefined;
      } catch (e) {
        if (e instanceof PoolBusyError)
          throw new TooManyAttempts('too many logins are being checked; try again shortly', 1);
        throw e;
      }
    }
    if (!p) {
      this.byAddress.fail(addressKey);
      this.byUser.fail(userKey);
    }
    return p;
  }

  /**
   * A fingerprint of the credential a principal logs in with (undefined when the account is gone or expired),
   * so refresh tokens can be bound to it.
   */
  credential(p: Principal): string | undefined {
    if (p.kind === 'anonymous') return undefined;
    if (p.kind === 'robot') return this.robots?.credential(p.name);
    return this.htpasswd?.credential(p.name);
  }

  /** Establishes who sent a request; bad credentials or tokens are a 401, never anonymous. */
  async identify(req: FastifyRequest): Promise<Identity> {
    const cached = identities.get(req);
    if (cached) return cached;
    const id = await this.identifyUncached(req);
    identities.set(req, id);
    return id;
  }

  private async identifyUncached(req: FastifyRequest): Promise<Identity> {
    const header = req.headers.authorization;
    // A session grants nothing by itself: the policy decides every request, as it does for Basic credentials.
    if (!header)
      return req.sessionPrincipal
        ? { principal: req.sessionPrincipal, via: 'session' }
        : { principal: ANONYMOUS, via: 'none' };
    const sp = header.indexOf(' ');
    const scheme = header.slice(0, sp).toLowerCase();
    const value = header.slice(sp + 1).trim();
    if (scheme === 'basic') {
      const creds = decodeBasic(value);
      const p = creds ? await this.checkCredentialsOrThrottle(req, creds.user, creds.password) : undefined;
      if (!p) this.refuse(req, 'invalid username or password', undefined, creds?.user);
      return { principal: p, via: 'basic' };
    }
    if (scheme === 'bearer') {
      let own: TokenError | undefined;
      if (this.issuer) {
        try {
          const t = await this.issuer.verify(value);
          return { principal: principalFromSubject(t.subject), via: 'bearer', grants: t.access };
        } catch (e) {
          if (!(e instanceof TokenError)) throw e;
          own = e;
        }
      }
      if (this.external) {
        try {
          const t = await this.external.verify(value);
          return {
            principal: t.subject ? { kind: 'user', name: t.subject } : ANONYMOUS,
            via: 'external',
            grants: t.access,
          };
        } catch (e) {
          if (!(e instanceof TokenError)) throw e;
          own ??= e;
        }
      }
      this.refuse(req, own?.message ?? 'token rejected', 'invalid_token');
    }
    this.refuse(req, `unsupported authorization scheme "${scheme.slice(0, 20)}"`);
  }

  /** checkCredentials for a request: too many failures become the OCI TOOMANYREQUESTS error with Retry-After. */
  async checkCredentialsOrThrottle(
    req: FastifyRequest,
    username: string,
    password: string,
  ): Promise<Principal | undefined> {
    try {
      return await this.checkCredentials(username, password, req.ip);
    } catch (e) {
      if (!(e instanceof TooManyAttempts)) throw e;
      req.retryAfter = e.retryAfter;
      req.loginUser = username;
      this.audit?.write({
        principal: username,
        address: req.ip,
        action: 'login',
        decision: 'denied',
        reason: e.message,
        method: req.method,
        status: 429,
      });
      throw new OciError('TOOMANYREQUESTS', e.message);
    }
  }

  private refuse(req: FastifyRequest, message: string, error?: string, user?: string): never {
    req.authChallenge = this.challenge(req, [], error);
    this.audit?.write({
      principal: user ?? 'unknown',
      address: req.ip,
      action: 'login',
      decision: 'denied',
      reason: message,
      method: req.method,
      status: 401,
    });
    throw new OciError('UNAUTHORIZED', message);
  }

  /** Decides one action for a principal (no I/O). */
  decide(principal: Principal, action: Action, target: Target): Decision {
    return decide(this.policy, { principal, action, target });
  }

  /** The registry's Authorizer: throws UNAUTHORIZED (with a challenge) or DENIED (naming the rule). */
  async authorize(req: FastifyRequest, access: AccessRequest): Promise<void> {
    const id = await this.identify(req);
    const who = principalText(id.principal);
    if (access.actions.length === 0 && !access.also?.length) {
      if (id.via === 'none' && this.hasCredentials) {
        req.authChallenge = this.challenge(req, []);
        throw new OciError('UNAUTHORIZED', 'authentication required');
      }
      return;
    }
    const checks = [
      { repository: access.repository, actions: access.actions, reference: access.reference },
      ...(access.also ?? []),
    ];
    for (const c of checks) {
      const target = targetOf(c.repository, 'reference' in c ? c.reference : undefined);
      for (const a of c.actions) {
        if (!isAction(a)) throw new OciError('DENIED', `unknown action ${a}`);
        // Token grants are looked up under the name the client asked its token for.
        const clientName =
          access.clientName ??
          (req.clientName && req.clientName.repository === c.repository ? req.clientName.name : undefined);
        const tokenName = c === checks[0] && clientName !== undefined ? clientName : c.repository;
        const scope: AccessEntry =
          c.repository === undefined
            ? { type: 'registry', name: 'catalog', actions: ['*'] }
            : { type: 'repository', name: tokenName!, actions: scopeFor(access, c.repository) };
        if (id.via === 'external') {
          // An external issuer's token decides on its own: Sluice's policy is not consulted.
          if (!granted(id.grants ?? [], tokenName, a, true))
            this.insufficient(req, id, a, c.repository, scope, 'the token does not grant it');
          continue;
        }
        // Our own tokens are a ceiling, not a pass: the policy is evaluated for every request too, because
        // a token is granted per repository while rules may name tags (immutable releases) and may have
        // been tightened since the token was issued.
        const d = this.decide(id.principal, a, target);
        if (!d.allowed) this.deny(req, id, d, c.repository, access.reference, scope);
        // Allowed by the policy but the token was issued for something else: ask the client for a new one.
        if (id.grants && !granted(id.grants, tokenName, a, false))
          this.insufficient(req, id, a, c.repository, scope, 'the token does not grant it');
        req.auditAccess = {
          principal: who,
          action: a,
          repository: c.repository,
          reference: access.reference,
          rule: d.rule !== undefined ? String(d.rule) : undefined,
        };
      }
    }
    if (id.via === 'external')
      req.auditAccess = {
        principal: who,
        action: access.actions.join(','),
        repository: access.repository,
        reference: access.reference,
        rule: 'token',
      };
  }

  private insufficient(
    req: FastifyRequest,
    id: Identity,
    action: string,
    repository: string | undefined,
    scope: AccessEntry,
    why: string,
  ): never {
    req.authChallenge = this.challenge(req, [scope], 'insufficient_scope');
    this.audit?.write({
      principal: principalText(id.principal),
      address: req.ip,
      action,
      repository,
      decision: 'denied',
      reason: why,
      method: req.method,
      status: 401,
    });
    throw new OciError('UNAUTHORIZED', `${action} on ${repository ?? 'the catalog'}: ${why}`, [
      { Type: scope.type, Name: scope.name, Action: action },
    ]);
  }

  private deny(
    req: FastifyRequest,
    id: Identity,
    d: Decision,
    repository: string | undefined,
    reference: string | undefined,
    scope: AccessEntry,
  ): never {
    const anonymous = id.principal.kind === 'anonymous';
    const status = anonymous && this.hasCredentials ? 401 : 403;
    this.audit?.write({
      principal: principalText(id.principal),
      address: req.ip,
      action: d.action,
      repository,
      reference,
      decision: 'denied',
      rule: d.rule !== undefined ? String(d.rule) : d.by,
      reason: d.reason,
      method: req.method,
      status,
    });
    if (status === 401) {
      req.authChallenge = this.challenge(req, [scope]);
      throw new OciError('UNAUTHORIZED', `authentication required: ${d.reason}`, [
        { Type: scope.type, Name: scope.name, Action: d.action },
      ]);
    }
    throw new OciError('DENIED', d.reason);
  }

  /** Whether the caller may push to a repository, as the policy decides (no challenge, no audit line). */
  async mayPush(req: FastifyRequest, repository: string): Promise<boolean> {
    try {
      const id = await this.identify(req);
      return id.via !== 'none' && this.decide(id.principal, 'push', { repository }).allowed;
    } catch {
      return false;
    }
  }

  /** Narrows the catalog to the repositories the caller may pull. */
  async filterCatalog(req: FastifyRequest, names: string[]): Promise<string[]> {
    const id = await this.identify(req);
    return names.filter((n) => this.decide(id.principal, 'pull', { repository: n }).allowed);
  }

  /** Other repository names a client's repository name may reach (the pull-through cache's), for token grants. */
  nameAliases?: (name: string) => string[];

  /** The access a token should carry for requested scopes: only what the policy allows. */
  grant(principal: Principal, requested: AccessEntry[]): AccessEntry[] {
    const out: AccessEntry[] = [];
    for (const r of requested) {
      if (r.type === 'registry') {
        if (this.decide(principal, 'list', {}).allowed) out.push({ type: 'registry', name: r.name, actions: ['*'] });
        continue;
      }
      const wanted = new Set<Action>();
      for (const a of r.actions) {
        if (a === '*') for (const x of ['pull', 'push', 'delete'] as Action[]) wanted.add(x);
        else if (isAction(a) && a !== 'list') wanted.add(a);
      }
      if (wanted.has('push')) wanted.add('overwrite');
      // A name a mirror client uses (`library/nginx`) may be served from a cache repository: the token
      // carries what the policy allows on either; each request is still decided on the repository it reaches.
      const names = [r.name, ...(this.nameAliases?.(r.name) ?? [])];
      const ok = ACTIONS.filter(
        (a) => wanted.has(a) && names.some((n) => this.decide(principal, a, { repository: n }).allowed),
      );
      const existing = out.find((e) => e.type === 'repository' && e.name === r.name);
      if (existing) existing.actions = [...new Set([...existing.actions, ...ok])];
      else if (ok.length) out.push({ type: 'repository', name: r.name, actions: ok });
    }
    return out;
  }
}

function scopeFor(access: AccessRequest, repository: string): string[] {
  const actions =
    repository === access.repository
      ? access.actions
      : (access.also?.find((x) => x.repository === repository)?.actions ?? ['pull']);
  return [...new Set(actions.map(scopeActionFor))];
}

/** Whether a token's access claim covers an action (external tokens know no `overwrite`: push covers it). */
function granted(grants: AccessEntry[], repository: string | undefined, action: Action, external: boolean): boolean {
  if (repository === undefined)
    return grants.some((g) => g.type === 'registry' && g.name === 'catalog' && g.actions.includes('*'));
  const need = external ? scopeActionFor(action) : action;
  return grants.some(
    (g) =>
      g.type === 'repository' &&
      g.name === repository &&
      (g.actions.includes(need) || (external && g.actions.includes('*'))),
  );
}

/** Decodes a Basic credential; the username ends at the first colon, the password may hold colons. */
export function decodeBasic(value: string): { user: string; password: string } | undefined {
  const text = Buffer.from(value, 'base64').toString('utf8');
  const i = text.indexOf(':');
  if (i <= 0) return undefined;
  return { user: text.slice(0, i), password: text.slice(i + 1) };
}
