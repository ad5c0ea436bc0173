// The registry's Authorizer: checks each action a request needs against the policy and the caller's token grants.
import type { FastifyRequest } from 'fastify';
import { isDigest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { isTag } from '../oci/name.js';
import { isAction, principalText, type Action, type Decision, type Target } from '../policy/types.js';
import type { AccessRequest } from './access-request.js';
import type { AccessGate } from './gate.js';
import type { Identity } from './identity.js';
import { scopeActionFor, type AccessEntry } from './scope.js';

/** The request being authorized, who sent it, and the access control deciding it. */
interface Check {
  gate: AccessGate;
  req: FastifyRequest;
  id: Identity;
}

/** What a refusal concerns: the action's repository (undefined: the catalog) and the scope a new token needs. */
interface Refused {
  repository: string | undefined;
  reference?: string;
  scope: AccessEntry;
}

/** Throws UNAUTHORIZED (with a challenge) or DENIED (naming the rule) unless every action asked for is allowed. */
export async function authorizeRequest(gate: AccessGate, req: FastifyRequest, access: AccessRequest): Promise<void> {
  const id = await gate.identify(req);
  const check: Check = { gate, req, id };
  const who = principalText(id.principal);
  if (access.actions.length === 0 && !access.also?.length) {
    if (id.via === 'none' && gate.hasCredentials) {
      req.authChallenge = gate.challenge(req, []);
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
      const refused: Refused = { repository: c.repository, scope };
      if (id.via === 'external') {
        // An external issuer's token decides on its own: Sluice's policy is not consulted.
        if (!granted(id.grants ?? [], tokenName, a, true))
          insufficient(check, a, refused, 'the token does not grant it');
        continue;
      }
      // Our own tokens are a ceiling, not a pass: the policy is evaluated for every request too, because
      // a token is granted per repository while rules may name tags (immutable releases) and may have
      // been tightened since the token was issued.
      const d = gate.decide(id.principal, a, target);
      if (!d.allowed) deny(check, d, { ...refused, reference: access.reference });
      // Allowed by the policy but the token was issued for something else: ask the client for a new one.
      if (id.grants && !granted(id.grants, tokenName, a, false))
        insufficient(check, a, refused, 'the token does not grant it');
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

function targetOf(repository: string | undefined, reference: string | undefined): Target {
  const t: Target = {};
  if (repository !== undefined) t.repository = repository;
  if (reference !== undefined && isDigest(reference)) t.digest = reference;
  else if (reference !== undefined && isTag(reference)) t.tag = reference;
  return t;
}

function insufficient({ gate, req, id }: Check, action: string, r: Refused, why: string): never {
  req.authChallenge = gate.challenge(req, [r.scope], 'insufficient_scope');
  gate.audit?.write({
    principal: principalText(id.principal),
    address: req.ip,
    action,
    repository: r.repository,
    decision: 'denied',
    reason: why,
    method: req.method,
    status: 401,
  });
  throw new OciError('UNAUTHORIZED', `${action} on ${r.repository ?? 'the catalog'}: ${why}`, [
    { Type: r.scope.type, Name: r.scope.name, Action: action },
  ]);
}

function deny({ gate, req, id }: Check, d: Decision, r: Refused): never {
  const anonymous = id.principal.kind === 'anonymous';
  const status = anonymous && gate.hasCredentials ? 401 : 403;
  gate.audit?.write({
    principal: principalText(id.principal),
    address: req.ip,
    action: d.action,
    repository: r.repository,
    reference: r.reference,
    decision: 'denied',
    rule: d.rule !== undefined ? String(d.rule) : d.by,
    reason: d.reason,
    method: req.method,
    status,
  });
  if (status === 401) {
    req.authChallenge = gate.challenge(req, [r.scope]);
    throw new OciError('UNAUTHORIZED', `authentication required: ${d.reason}`, [
      { Type: r.scope.type, Name: r.scope.name, Action: d.action },
    ]);
  }
  throw new OciError('DENIED', d.reason);
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
