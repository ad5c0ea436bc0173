// Access control as one registry sees it: the class that holds the stores, the policy and the token services.
import type { FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { compilePolicy, decide, type Policy } from '../policy/evaluate.js';
import type { Action, Decision, Principal, Target } from '../policy/types.js';
import { enforcedPolicySpec } from '../policy/config.js';
import type { AccessRequest } from './access-request.js';
import { parseDuration } from '../config/duration.js';
import { FailureLimiter } from './attempts.js';
import { AuditLog } from './audit.js';
import { authorizeRequest } from './authorize.js';
import type { AccessGate } from './gate.js';
import { HtpasswdStore } from './htpasswd.js';
import { identifyRequest } from './identify.js';
import type { Identity } from './identity.js';
import { checkLogin, checkRequestLogin, type LoginState } from './login.js';
import { realmFor, type RealmSettings } from './realm.js';
import { RobotStore } from './robots.js';
import { basicChallenge, bearerChallenge, type AccessEntry } from './scope.js';
import { grantScopes } from './token-grant.js';
import { ExternalTokenVerifier, TokenIssuer } from './tokens.js';

// What moved out of this module stays importable from it.
export { decodeBasic, principalFromSubject, subjectOf, type Identity } from './identity.js';
export { TooManyAttempts } from './login.js';

/** Authentication, the policy, the token service and the audit log, as one registry sees them. */
export class AccessControl implements AccessGate {
  private constructor(
    readonly policy: Policy,
    readonly htpasswd: HtpasswdStore | undefined,
    readonly robots: RobotStore | undefined,
    readonly issuer: TokenIssuer | undefined,
    readonly external: ExternalTokenVerifier | undefined,
    readonly audit: AuditLog | undefined,
    private readonly realmSettings: RealmSettings,
    private readonly basicRealm: string,
    private readonly logins: LoginState,
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
      {
        htpasswd,
        robots,
        byAddress: new FailureLimiter(limit.failures, windowMs),
        byUser: new FailureLimiter(limit.failures, windowMs),
      },
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

  /** The token endpoint URL for challenges (see realmFor: never the Host header unless configured). */
  realm(req: FastifyRequest): string {
    return realmFor(this.realmSettings, req);
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
  checkCredentials(username: string, password: string, address: string): Promise<Principal | undefined> {
    return checkLogin(this.logins, { username, password, address });
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
  identify(req: FastifyRequest): Promise<Identity> {
    return identifyRequest(this, req);
  }

  /** checkCredentials for a request: too many failures become the OCI TOOMANYREQUESTS error with Retry-After. */
  checkCredentialsOrThrottle(req: FastifyRequest, username: string, password: string): Promise<Principal | undefined> {
    return checkRequestLogin(this, req, { username, password });
  }

  /** Decides one action for a principal (no I/O). */
  decide(principal: Principal, action: Action, target: Target): Decision {
    return decide(this.policy, { principal, action, target });
  }

  /** The registry's Authorizer: throws UNAUTHORIZED (with a challenge) or DENIED (naming the rule). */
  authorize(req: FastifyRequest, access: AccessRequest): Promise<void> {
    return authorizeRequest(this, req, access);
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
    return grantScopes(this, principal, requested);
  }
}
