import type { FastifyInstance } from 'fastify';
import type { AccessControl } from '../auth/access-control.js';
import { hasCredentials } from '../auth/config.js';
import { parseActions, parsePrincipal, parseTarget } from '../policy/explain-input.js';
import { OciError } from '../oci/errors.js';
import { enforcedPolicySpec } from '../policy/config.js';
import { compilePolicy, decide, type Policy } from '../policy/evaluate.js';
import { decisionLines } from '../policy/explain-text.js';
import { type Principal, principalText, type Target } from '../policy/types.js';
import type { RegistryContext } from '../registry/context.js';
import type { Admins } from './admin.js';
import { badRequest, json, route, textParam } from './api-reply.js';

/** The principal the form names (`who=user|robot|anonymous` and `name=`), or the caller when none is named. */
function askedAbout(q: Record<string, unknown>, caller: Principal): Principal {
  const who = textParam(q, 'who', 16);
  const name = textParam(q, 'name', 128);
  if (who === undefined) {
    if (name !== undefined) badRequest('name= needs who=user or who=robot');
    return caller;
  }
  if (who !== 'user' && who !== 'robot' && who !== 'anonymous') badRequest('who= must be user, robot or anonymous');
  if (who !== 'anonymous' && name === undefined) badRequest(`who=${who} needs name=`);
  const p = parsePrincipal(who === 'user' ? { user: name! } : who === 'robot' ? { robot: name! } : { anonymous: true });
  if (typeof p === 'string') badRequest(p.replace(/--(user|robot)/, 'name='));
  return p;
}

/**
 * `GET /api/v1/policy/explain?action=pull,push&reference=team-a/app:1&who=user&name=alice`: the deciding rule
 * for each action, as `sluice policy explain` prints it (the same functions make the lines), or with
 * `action=fetch` the flow rule and with `action=trust` the signature requirements. Anyone may ask about
 * themselves; only administrators (`ui.admins`) about someone else.
 */
export function registerPolicyExplainRoutes(
  app: FastifyInstance,
  ctx: RegistryContext,
  access: Promise<AccessControl> | undefined,
  admins: Admins,
): void {
  // Without access control the server decides by the open registry's policy, as the CLI does for that config.
  let open: Policy | undefined;
  const policyOf = async (): Promise<Policy> => {
    if (access) return (await access).policy;
    open ??= compilePolicy(
      enforcedPolicySpec(ctx.config.access, {
        hasCredentials: hasCredentials(ctx.config.auth),
        readonlyAll: ctx.readOnly,
      }),
    );
    return open;
  };

  app.get(
    '/api/v1/policy/explain',
    route(async (req, reply) => {
      const q = req.query as Record<string, unknown>;
      const caller = await admins.caller(req);
      const principal = askedAbout(q, caller.principal);
      if (!caller.admin && principalText(principal) !== principalText(caller.principal))
        throw new OciError(
          'DENIED',
          `only administrators (ui.admins) may ask about someone else; ask about ${principalText(caller.principal)}`,
        );
      const reference = textParam(q, 'reference', 512);
      if (reference === undefined) badRequest('reference= is required (repository[:tag] or repository@digest)');
      const action = textParam(q, 'action', 100) ?? 'pull,push,overwrite,delete';
      const about = principalText(principal);
      if (action === 'fetch' || action === 'trust') {
        try {
          if (action === 'trust') {
            const { explainTrust } = await import('../registry/explain-fetch.js');
            const t = explainTrust(ctx.config, reference);
            json(reply, { principal: about, kind: 'trust', allowed: t.allowed, lines: t.lines, result: t.json });
          } else {
            const { explainFetch, printFetch } = await import('../registry/explain-fetch.js');
            const f = explainFetch(ctx.config, reference);
            const lines = printFetch(f, ctx.config).trimEnd().split('\n');
            json(reply, { principal: about, kind: 'fetch', allowed: f.allowed, lines, result: f });
          }
        } catch (e) {
          badRequest((e as Error).message);
        }
        return;
      }
      if (action.split(',').some((a) => a.trim() === 'fetch' || a.trim() === 'trust'))
        badRequest(`action=${action}: ask fetch or trust alone`);
      const actions = parseActions(action);
      if (typeof actions === 'string') badRequest(actions.replace('--action', 'action='));
      let target: Target;
      try {
        target = parseTarget(reference);
      } catch (e) {
        badRequest((e as Error).message);
      }
      const policy = await policyOf();
      // `list` is the catalog: registry-wide, as the registry asks it, whatever the reference.
      const decisions = actions.map((a) =>
        decide(policy, { principal, action: a, target: a === 'list' ? {} : target }),
      );
      json(reply, {
        principal: about,
        kind: 'access',
        allowed: decisions.every((d) => d.allowed),
        lines: decisions.flatMap((d) => decisionLines(d, policy.spec.rules)),
        result: decisions,
      });
    }),
  );
}
