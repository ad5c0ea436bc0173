import type { FastifyRequest } from 'fastify';
import type { AccessControl } from '../auth/access-control.js';
import { isDigest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/name.js';
import { decideFlow, flowLabel } from '../policy/flows.js';
import { trustLabel } from '../policy/trust.js';
import { principalText, type Action } from '../policy/types.js';
import type { RegistryContext } from '../registry/context.js';

/** One action's decision for the caller, as `sluice policy explain` prints it. */
export interface ActionWhy {
  action: Action;
  allowed: boolean;
  /** The deciding rule (`rule 2 "team-a"`), `read-only`, or `default`. */
  by: string;
  reason: string;
}

/** Why the caller may (or may not) do each thing with an image, and what the flow and trust rules say of it. */
export interface Explanation {
  principal: string;
  actions: ActionWhy[];
  fetch?: { allowed: boolean; rule?: string; reason: string };
  trust?: { rule: string; on: string[] };
}

const ASKED: Action[] = ['pull', 'push', 'overwrite', 'delete'];

/**
 * The caller's own decisions on one repository (and tag or digest), by the same policy the registry asks;
 * only ever for the caller, and only after the caller was allowed to pull it, so it tells nothing that a
 * refused request would not. Without access control everything is allowed by default.
 */
export async function explainFor(
  ctx: RegistryContext,
  access: Promise<AccessControl> | undefined,
  req: FastifyRequest,
  name: RepositoryName,
  reference: string | undefined,
): Promise<Explanation> {
  const target = {
    repository: name,
    ...(reference === undefined ? {} : isDigest(reference) ? { digest: reference } : { tag: reference }),
  };
  let out: Explanation;
  if (!access) {
    const by = ctx.readOnly ? 'read-only' : 'default';
    out = {
      principal: 'anyone',
      actions: ASKED.map((a) => {
        const write = a !== 'pull';
        const allowed = !(write && ctx.readOnly) && (a !== 'delete' || ctx.deleteEnabled);
        return {
          action: a,
          allowed,
          by,
          reason: allowed
            ? 'no access control is configured'
            : write && ctx.readOnly
              ? 'this registry is read-only'
              : 'deletion is disabled (storage.delete.enabled)',
        };
      }),
    };
  } else {
    const ac = await access;
    const { principal } = await ac.identify(req);
    out = {
      principal: principalText(principal),
      actions: ASKED.map((a) => {
        const d = ac.decide(principal, a, target);
        const by = d.rule !== undefined ? `rule ${d.rule}` : d.by;
        return { action: a, allowed: d.allowed, by, reason: d.reason };
      }),
    };
  }
  const flows = ctx.cache?.flows;
  if (flows && ctx.cache?.cacheOf(name)) {
    const first = name.split('/')[0]!;
    const upstream = ctx.cache.upstreams.byPrefix(first);
    const image = upstream ? `${upstream.name}${name.slice(first.length)}` : name;
    const d = decideFlow(flows, {
      repository: image,
      ...(reference !== undefined && !isDigest(reference) ? { tag: reference } : {}),
    });
    out.fetch = { allowed: d.allowed, ...(d.flow ? { rule: flowLabel(d.flow) } : {}), reason: d.reason };
  }
  const rule = ctx.trust?.ruleFor(name, 'pull');
  if (rule) out.trust = { rule: trustLabel(rule), on: ['pull'] };
  return out;
}
