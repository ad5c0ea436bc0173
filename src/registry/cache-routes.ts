import type { FastifyReply, FastifyRequest } from 'fastify';
import { OciError } from '../oci/errors.js';
import type { BlobFill } from '../proxy/blob-fill.js';
import { NotMirrored } from '../proxy/names.js';
import { requireDigest, sendBlob } from './blob-routes.js';
import type { RegistryContext } from './context.js';
import { listTags } from './listing-routes.js';
import type { Endpoint } from './paths.js';

type Named = Exclude<Endpoint, { kind: 'base' } | { kind: 'catalog' }>;

declare module 'fastify' {
  interface FastifyRequest {
    /** The name a client used for a repository the cache serves under another name. */
    clientName?: { repository: string; name: string };
  }
}

/**
 * Sends a request for an upstream image through the pull-through cache. Returns the endpoint the
 * registry should serve from storage (renamed to the cache repository, after the cache has made sure
 * storage holds what it needs), or null when the request was answered here (a blob streamed from a
 * fill in progress, a tag list). Local repositories pass through unchanged.
 */
export async function throughCache(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  ep: Named,
): Promise<Endpoint | null> {
  const cache = ctx.cache!;
  const read = req.method === 'GET' || req.method === 'HEAD';
  const ns = (req.query as Record<string, unknown>).ns;
  let t: Awaited<ReturnType<typeof cache.target>>;
  try {
    t = await cache.target(ep.name, {
      ...(typeof ns === 'string' ? { ns } : {}),
      ...(req.headers.host ? { host: req.headers.host } : {}),
      write: !read,
    });
  } catch (e) {
    if (e instanceof NotMirrored) throw new OciError('NAME_UNKNOWN', `${ep.name}: ${e.message}`, { name: ep.name });
    throw e;
  }
  if (!t) return ep;
  if (!read) {
    const why = t.viaUnprefixed
      ? ` (${ep.name} without a registry host is ${t.image} for mirror clients, because the flow rules approve that name; push under another name, or set upstreams.${t.upstream.name}.unprefixed: false)`
      : ' (push to another name)';
    throw new OciError(
      'DENIED',
      `${t.local} is a cache of ${t.upstream.name}: its content comes from upstream only, so it cannot be written${why}`,
      { name: t.local },
    );
  }
  const local = t.local;
  // The token a client holds was issued for the name it asked for; the policy decides on the cache repository.
  // Kept on the request, so the route that serves from storage afterwards authorizes the same way.
  const clientName = ep.name !== local ? { clientName: ep.name } : {};
  if (ep.name !== local) req.clientName = { repository: local, name: ep.name };
  switch (ep.kind) {
    case 'manifest':
      // The client's own access comes first: nobody makes the cache fetch what they may not pull.
      await ctx.authorize(req, { repository: local, actions: ['pull'], reference: ep.reference, ...clientName });
      await cache.ensureManifest(t, ep.reference, {
        principal: req.auditAccess?.principal ?? 'anonymous',
        address: req.ip,
      });
      return { ...ep, name: local };
    case 'blob': {
      const digest = requireDigest(ep.digest);
      await ctx.authorize(req, { repository: local, actions: ['pull'], reference: digest, ...clientName });
      const fill = await cache.blobFill(t, digest);
      if (!fill) return { ...ep, name: local };
      await sendFromFill(ctx, req, reply, fill);
      return null;
    }
    case 'tags':
      await listTags(ctx, req, reply, local, () => cache.tags(t));
      return null;
    default:
      return { ...ep, name: local };
  }
}

/** Answers a blob GET (or HEAD) from a fill: headers at once, bytes as they arrive from upstream. */
function sendFromFill(ctx: RegistryContext, req: FastifyRequest, reply: FastifyReply, fill: BlobFill): Promise<void> {
  return sendBlob(ctx, req, reply, fill.digest, fill.size, (out, start, length) =>
    fill.pipeTo(out, start, start + length),
  );
}
