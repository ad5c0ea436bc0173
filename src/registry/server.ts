import Fastify, {
  LogController,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Config } from '../config/schema.js';
import { parseAddr } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import { plainHttpWarning, tlsServerOptions } from '../config/tls.js';
import { scheduleUploadPurge } from './maintenance.js';
import { installPulls } from './pulls-setup.js';
import { OciError } from '../oci/errors.js';
import type { StorageDriver } from '../storage/driver.js';
import { driverFor } from '../storage/driver-for.js';
import { checkStorageAtStart, StorageHealth } from '../storage/health.js';
import { checkImmutableTags } from './immutable-tags.js';
import { deleteBlob, getBlob } from './blob-routes.js';
import { RegistryContext } from './context.js';
import { sendError, toOciError } from './errors.js';
import { listCatalog, listReferrers, listTags } from './listing-routes.js';
import { deleteManifest, getManifest, putManifest } from './manifest-routes.js';
import { Metrics } from './metrics.js';
import { matchEndpoint, type Endpoint } from './paths.js';
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from './upload-routes.js';
import { clientErrorHandler, errorHandler, frameworkErrors } from './framework-errors.js';
import { installUi } from '../ui/install.js';
import { requireRegistryName } from './registry-name.js';
import { loadParts, type RegistryParts } from './parts.js';
import { lazySchemaCompilers } from './schema-compilers.js';

export { driverFor };

declare module 'fastify' {
  interface FastifyRequest {
    endpoint?: string;
    /** The error a request was refused with, for its log line: a denial's reason is otherwise only in the audit log. */
    refusal?: OciError;
  }
}

/** Options for building a registry server. */
export interface ServerOptions {
  config: Config;
  driver?: StorageDriver;
  /** Pino logger settings or false; defaults follow `log.level`. */
  logger?: boolean | Record<string, unknown>;
  metrics?: Metrics;
}

/** The running registry: the Fastify app and its context (storage, hooks). */
export interface Registry {
  app: FastifyInstance;
  ctx: RegistryContext;
}

function decodePath(url: string): string {
  const q = url.indexOf('?');
  const raw = q >= 0 ? url.slice(0, q) : url;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new OciError('NAME_INVALID', 'the request path is not valid percent-encoding');
  }
}

function unsupported(method: string, kind: string): never {
  throw new OciError('UNSUPPORTED', `${method} is not supported on the ${kind} endpoint`);
}

/** Routes a request through the pull-through cache: the endpoint to serve from storage, or undefined once answered. */
type ThroughCache = NonNullable<RegistryParts['cache']>['routes']['throughCache'];

async function dispatch(
  ctx: RegistryContext,
  req: FastifyRequest,
  reply: FastifyReply,
  ep: Endpoint,
  throughCache: ThroughCache | undefined,
): Promise<void> {
  const m = req.method;
  if (ctx.cache && throughCache && ep.kind !== 'base' && ep.kind !== 'catalog') {
    const routed = await throughCache(ctx, req, reply, ep);
    if (!routed) return;
    ep = routed;
  }
  switch (ep.kind) {
    case 'base':
      await ctx.authorize(req, { actions: [] });
      reply.code(200).header('content-type', 'application/json').send('{}');
      return;
    case 'catalog':
      if (m !== 'GET') unsupported(m, 'catalog');
      return listCatalog(ctx, req, reply);
    case 'tags':
      if (m !== 'GET') unsupported(m, 'tags');
      return listTags(ctx, req, reply, ep.name);
    case 'referrers':
      if (m !== 'GET') unsupported(m, 'referrers');
      return listReferrers(ctx, req, reply, ep.name, ep.digest);
    case 'manifest':
      if (m === 'GET' || m === 'HEAD') return getManifest(ctx, req, reply, ep.name, ep.reference);
      if (m === 'PUT') return putManifest(ctx, req, reply, ep.name, ep.reference);
      if (m === 'DELETE') return deleteManifest(ctx, req, reply, ep.name, ep.reference);
      return unsupported(m, 'manifest');
    case 'blob':
      if (m === 'GET' || m === 'HEAD') return getBlob(ctx, req, reply, ep.name, ep.digest);
      if (m === 'DELETE') return deleteBlob(ctx, req, reply, ep.name, ep.digest);
      return unsupported(m, 'blob');
    case 'uploads':
      if (m === 'POST') return startUpload(ctx, req, reply, ep.name);
      return unsupported(m, 'upload');
    case 'upload':
      if (m === 'GET') return uploadStatus(ctx, req, reply, ep.name, ep.id);
      if (m === 'PATCH') return patchUpload(ctx, req, reply, ep.name, ep.id);
      if (m === 'PUT') return finishUpload(ctx, req, reply, ep.name, ep.id);
      if (m === 'DELETE') return cancelUpload(ctx, req, reply, ep.name, ep.id);
      return unsupported(m, 'upload');
  }
}

/** Marks a plugin so its routes and hooks land on the app itself, not in a child scope (what fastify-plugin does). */
function onRoot(plugin: FastifyPluginAsync): FastifyPluginAsync {
  return Object.assign(plugin, { [Symbol.for('skip-override')]: true });
}

/**
 * Builds the registry app without listening, so tests and embedders can use it. The optional parts a config
 * names (access control, trust, cache, mirrors, gc, events) load in a plugin that `ready`, `listen` and
 * `inject` wait for; a part that cannot start (a trust key that does not read) fails those, not this call.
 */
export function buildRegistry(opts: ServerOptions): Registry {
  const { config } = opts;
  const metrics = opts.metrics ?? new Metrics();
  const driver = opts.driver ?? driverFor(config);
  const ctx = new RegistryContext(driver, config, metrics);
  requireRegistryName(config);
  const level = config.log.level;
  const tls = tlsServerOptions(config.http.tls);
  const app = Fastify({
    // With http.tls the server is an https.Server at run time; no route or hook depends on which it is.
    ...(tls ? ({ https: tls } as object) : {}),
    logger:
      opts.logger ??
      (level === 'silent'
        ? false
        : { level, base: { service: 'sluice', ...(config.log.fields ?? {}) }, redact: ['req.headers.authorization'] }),
    // One line per request is written by the onResponse hook instead.
    logController: new LogController({ disableRequestLogging: true }),
    // Repository names hold slashes and are long; blob bodies are streamed by the routes themselves.
    routerOptions: { maxParamLength: 2048 },
    bodyLimit: 1024 * 1024,
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    requestIdHeader: false,
    clientErrorHandler,
    // Failures before a route runs still answer in the OCI format.
    frameworkErrors,
    // The one plugin below reads modules from disk; on a loaded machine that may outlast avvio's 10 s default.
    pluginTimeout: 0,
    // No route has a schema: ajv and fast-json-stringify load only if one ever does.
    schemaController: lazySchemaCompilers(),
  });
  app.setErrorHandler(errorHandler);
  app.register(onRoot(async (root) => assemble(root, ctx, await loadParts(config))));
  return { app, ctx };
}

/** Installs the parts, hooks and routes of the registry, in the order their hooks must run. */
function assemble(app: FastifyInstance, ctx: RegistryContext, parts: RegistryParts): void {
  const { config, metrics, driver } = ctx;
  ctx.trust = parts.trust?.buildTrust(config);
  ctx.cache = parts.cache?.setup.buildCache(ctx, config, ctx.trust);
  const throughCache = parts.cache?.routes.throughCache;
  // Mirror jobs run on their schedules while the server listens (closed before the cache's upstreams).
  // They write into storage, so a read-only registry (a host node sharing the builder's config) skips them.
  const mirrors = parts.mirrors;
  if (mirrors) {
    let scheduler: ReturnType<typeof mirrors.startMirrorJobs>;
    app.addHook('onReady', async () => {
      if (ctx.readOnly)
        app.log.warn('mirrors: not run, this registry is read-only (storage.maintenance.readonly.enabled)');
      else ctx.mirrors = scheduler = mirrors.startMirrorJobs(ctx, config, app.log);
    });
    app.addHook('onClose', async () => scheduler?.stop());
  }
  parts.gc?.installGc(app, ctx);
  installPulls(app, ctx);
  parts.events?.installEvents(app, ctx);
  if (ctx.cache) {
    const cache = ctx.cache;
    cache.attach(app.log);
    app.addHook('onClose', async () => cache.close());
  }
  // On close, Node closes the connections that are idle at that moment; one whose response is still
  // finishing (a blob just sent) would otherwise wait out the keep-alive timeout. Keep closing the idle
  // ones until the server is down.
  app.addHook('preClose', async () => {
    const timer = setInterval(() => app.server.closeIdleConnections(), 50);
    timer.unref();
    app.server.once('close', () => clearInterval(timer));
  });
  app.removeAllContentTypeParsers();
  // Leave every body unread: each route streams or bounds it itself.
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  // Access control (src/auth): /token, ctx.authorize, ctx.catalogFilter, challenges, audit log.
  const access = parts.access?.installAccessControl(app, ctx, config);
  // The web UI and its JSON API (src/ui), decided by the same access control.
  installUi(app, ctx, access);

  const extraHeaders = config.http.headers ?? {};
  app.addHook('onRequest', async (_req, reply) => {
    reply.header('docker-distribution-api-version', 'registry/2.0');
    for (const [k, v] of Object.entries(extraHeaders)) reply.header(k, v.join(', '));
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.endpoint ?? 'other';
    const seconds = reply.elapsedTime / 1000;
    metrics.requests.inc({ route, method: req.method, status: String(reply.statusCode) });
    metrics.requestSeconds.observe({ route, method: req.method }, seconds);
    if (config.log.accesslog?.disabled) return;
    // A refusal says why in the line itself (which rule denied, which flow refused), as the client was told.
    const refused = req.refusal ? { code: req.refusal.code, reason: req.refusal.message.slice(0, 1000) } : {};
    req.log.info(
      {
        method: req.method,
        url: req.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        remote: req.ip,
        route,
        ...refused,
      },
      'request',
    );
  });

  const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const head = req.method === 'HEAD';
    try {
      const path = decodePath(req.url);
      const ep = path === '/v2' ? { kind: 'base' as const } : matchEndpoint(path.slice('/v2/'.length));
      if (!ep) throw new OciError('NAME_UNKNOWN', `no endpoint at ${path.slice(0, 200)}`, undefined, 404);
      req.endpoint = ep.kind;
      await dispatch(ctx, req, reply, ep, throughCache);
      return undefined;
    } catch (e) {
      const err = toOciError(e);
      if (err.status < 500) req.refusal = err;
      // A client that hangs up mid-body is routine, not a server fault (a full disk also ends the body early).
      if (err.status === 500 && !req.raw.complete && req.raw.destroyed)
        req.log.info({ url: req.url }, 'client went away mid-request');
      else if (err.code === 'UNKNOWN') req.log.error({ err: e }, 'request failed');
      // A body still arriving is not read on (it may be gigabytes, and after a failed write nothing reads it,
      // which held the connection until the keep-alive timeout): the answer says Connection: close, and Node
      // ends the connection once it is sent.
      const arriving = !req.raw.complete;
      if (arriving && !reply.sent) reply.header('connection', 'close');
      const answer = reply.sent ? undefined : sendError(reply, err, head);
      // A body that has fully arrived but is unread is discarded, and the connection kept.
      if (!arriving && !req.raw.readableEnded) req.raw.resume();
      // Returned, so fastify waits for this answer (an onSend hook may journal its event first) and does not send another.
      return answer;
    }
  };
  app.route({ method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'], url: '/v2', handler, exposeHeadRoute: false });
  app.route({
    method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'],
    url: '/v2/*',
    handler,
    exposeHeadRoute: false,
  });

  // Writes a probe file (read-only registries only read), at most once every few seconds.
  const storageHealth = new StorageHealth(driver, ctx.readOnly);
  app.get('/healthz', async (_req, reply) => {
    try {
      await storageHealth.check();
      return reply.code(200).send({ status: 'ok', storage: driver.name });
    } catch (e) {
      return reply.code(503).send({ status: 'unavailable', error: (e as Error).message });
    }
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  app.setNotFoundHandler((req, reply) => {
    sendError(
      reply,
      new OciError('UNSUPPORTED', `no route for ${req.method} ${req.url.slice(0, 200)}`, undefined, 404),
      req.method === 'HEAD',
    );
  });
}

/**
 * Connections the kernel may hold for accept(): Node's default, 511, overflows under a burst of pulls
 * (a CI fleet starting at once) and Linux then drops SYNs, which clients see as 1 to 15 s connect stalls
 * or resets. The kernel caps it at net.core.somaxconn (4096 on current Linux).
 */
export const LISTEN_BACKLOG = 4096;

/** Starts the registry on `http.addr` and stops it gracefully on SIGTERM and SIGINT. */
export async function serve(config: Config, onListen?: (url: string) => void): Promise<Registry> {
  const reg = buildRegistry({ config });
  // An unwritable root would start a registry that answers every push with 500: refuse with one clear line.
  const storageWarning = await checkStorageAtStart(reg.ctx.driver, reg.ctx.readOnly);
  if (storageWarning) reg.app.log.warn(storageWarning);
  const tagRace = await checkImmutableTags(config, reg.ctx.driver, reg.ctx.readOnly);
  if (tagRace) reg.app.log.warn(tagRace);
  const { host, port } = parseAddr(config.http.addr);
  const plain = plainHttpWarning(host, config.http.tls);
  if (plain) reg.app.log.warn(plain);
  const address = await reg.app.listen({ host, port, backlog: LISTEN_BACKLOG });
  onListen?.(address);
  const purge = scheduleUploadPurge(reg.ctx, reg.app.log);
  let closing = false;
  const stop = (signal: string) => {
    if (closing) return;
    closing = true;
    const drainMs = parseDuration(config.http.draintimeout ?? '60s');
    reg.app.log.info({ signal, drainMs }, 'shutting down; letting requests in flight finish');
    purge.stop();
    // A client that never finishes its request must not keep the process alive forever.
    setTimeout(() => {
      reg.app.log.warn({ drainMs }, 'requests still in flight after http.draintimeout; exiting');
      process.exit(1);
    }, drainMs).unref();
    reg.app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return reg;
}
