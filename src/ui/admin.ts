import type { FastifyRequest } from 'fastify';
import type { AccessControl } from '../auth/access-control.js';
import { OciError } from '../oci/errors.js';
import { compileWho, type WhoMatcher } from '../policy/principals.js';
import { ANONYMOUS, type Principal, principalText } from '../policy/types.js';
import type { RegistryContext } from '../registry/context.js';

/** Who is asking, and whether `ui.admins` names them. */
export interface Caller {
  principal: Principal;
  admin: boolean;
}

/**
 * Decides who may use the administration pages: the principals `ui.admins` names, in the `who` words of the
 * access rules (groups from `access.groups`). Nobody is an administrator unless named; with no access control
 * at all every caller is anonymous, so only `*` or `anonymous` would name them.
 */
export class Admins {
  private readonly who: WhoMatcher[];

  /** Compiles `ui.admins`; an unknown group stops the start, as it does in a rule. */
  constructor(
    ctx: RegistryContext,
    private readonly access: Promise<AccessControl> | undefined,
  ) {
    try {
      this.who = compileWho(ctx.config.ui?.admins ?? [], ctx.config.access?.groups ?? {});
    } catch (e) {
      throw new Error(`ui.admins: ${(e as Error).message}`);
    }
  }

  /** Whether anyone at all may be an administrator (else no admin page exists). */
  get any(): boolean {
    return this.who.length > 0;
  }

  /** Identifies the caller (bad credentials are a 401, as everywhere) and says whether it is an administrator. */
  async caller(req: FastifyRequest): Promise<Caller> {
    const principal = this.access ? (await (await this.access).identify(req)).principal : ANONYMOUS;
    return { principal, admin: this.who.some((w) => w.matches(principal)) };
  }

  /**
   * Refuses a caller that is not an administrator: anonymous is asked to log in (401) when logins exist,
   * anyone else is told no (403), as the registry refuses a pull.
   */
  async require(req: FastifyRequest, action: string): Promise<Caller> {
    const c = await this.caller(req);
    if (c.admin) return c;
    const ac = this.access ? await this.access : undefined;
    const anonymous = c.principal.kind === 'anonymous';
    ac?.audit?.write({
      principal: principalText(c.principal),
      address: req.ip,
      action,
      decision: 'denied',
      rule: 'ui.admins',
      reason: 'not an administrator (ui.admins)',
      method: req.method,
      status: anonymous && ac.hasCredentials ? 401 : 403,
    });
    if (anonymous && ac?.hasCredentials) {
      req.authChallenge = ac.challenge(req, []);
      throw new OciError('UNAUTHORIZED', 'authentication required: only administrators (ui.admins) may see this');
    }
    throw new OciError(
      'DENIED',
      `only administrators (ui.admins) may see this; ${principalText(c.principal)} is not one`,
    );
  }
}
