import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

/**
 * The UI's Content Security Policy: only this origin's scripts and styles, no inline code, nothing framed,
 * so even a label that slipped past escaping could run nothing.
 */
export const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Where the build puts the browser code and static files: dist/web, beside dist/src. */
function webRoot(): string {
  return fileURLToPath(new URL('../../web/', import.meta.url));
}

/** Every file of the built UI, read once at start: a request's path is looked up in this map, never joined to a path. */
function readAssets(dir: string, prefix = ''): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) for (const [k, v] of readAssets(p, `${prefix}${name}/`)) out.set(k, v);
    else if (TYPES[name.slice(name.lastIndexOf('.'))]) out.set(`${prefix}${name}`, readFileSync(p));
  }
  return out;
}

/** Headers every UI and API answer carries. */
export function securityHeaders(reply: FastifyReply): void {
  reply.header('content-security-policy', CSP);
  reply.header('x-content-type-options', 'nosniff');
  reply.header('referrer-policy', 'no-referrer');
  reply.header('x-frame-options', 'DENY');
}

/** Serves the UI: `/` and `/ui/` give the page, `/ui/<file>` the built scripts and styles. */
export function registerStaticRoutes(app: FastifyInstance): void {
  const assets = readAssets(webRoot());
  const send = (reply: FastifyReply, file: string) => {
    const body = assets.get(file);
    if (!body) return reply.code(404).header('content-type', 'text/plain; charset=utf-8').send('not found');
    const type = TYPES[file.slice(file.lastIndexOf('.'))]!;
    // The page is small and names its scripts by path: revalidate each time so an upgrade shows at once.
    return reply.code(200).header('content-type', type).header('cache-control', 'no-cache').send(body);
  };
  app.get('/', async (_req, reply) => send(reply, 'index.html'));
  app.get('/ui', async (_req, reply) => reply.redirect('/ui/'));
  app.get('/ui/', async (_req, reply) => send(reply, 'index.html'));
  app.get('/ui/*', async (req, reply) => send(reply, (req.params as { '*': string })['*']));
}
