import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { makeMultiArch, writeOciLayout } from '../helpers/images.js';
import { assertIntact } from '../helpers/oci-http.js';
import { startRegistry } from '../helpers/registry.js';
import { sluice, sluiceCopy } from '../helpers/sluice-cli.js';
import { makePki } from '../helpers/tls.js';
import { needTools } from '../helpers/tools.js';
import { parseHttpLayoutReference } from '../../src/transport/oci-http.js';

/**
 * A static file server over a directory (GET and HEAD only), logging what it is asked; `/moved/…` redirects
 * to `/…`. With `tls` (PEM certificate and key) it speaks HTTPS.
 */
async function serveDirectory(
  dir: string,
  tls?: { cert: Buffer; key: Buffer },
): Promise<{ url: string; log: string[]; close(): Promise<void> }> {
  const log: string[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    log.push(`${req.method} ${req.url}`);
    const path = decodeURIComponent(new URL(req.url!, 'http://x').pathname);
    if (path.startsWith('/moved/')) {
      res.writeHead(301, { location: path.slice('/moved'.length) }).end();
      return;
    }
    const file = join(dir, normalize(path));
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !file.startsWith(dir)) {
      res.writeHead(405).end();
      return;
    }
    stat(file).then(
      (st) => {
        if (!st.isFile()) throw new Error('not a file');
        res.writeHead(200, { 'content-length': st.size, 'content-type': 'application/octet-stream' });
        if (req.method === 'HEAD') res.end();
        else createReadStream(file).pipe(res);
      },
      () => res.writeHead(404).end(),
    );
  };
  const server: Server = tls ? createTlsServer(tls, handler) : createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    log,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

test('an OCI layout on a static web server is read into a registry with its digests (oci-http:, read-only)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-static-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const idx = await makeMultiArch('static');
  await writeOciLayout(join(dir, 'layouts', 'app'), [{ tag: 'v1', image: idx }]);
  const web = await serveDirectory(dir);
  t.after(() => web.close());
  const reg = await startRegistry();
  t.after(() => reg.close());

  const out = await sluiceCopy(`oci-http:${web.url}/layouts/app:v1`, `docker://${reg.host}/web/app:v1`, ['--all']);
  assert.equal(out.digest, idx.digest);
  assert.equal(out.sourceDigest, idx.digest);
  await assertIntact(reg.url, 'web/app', 'v1', idx);
  assert.ok(
    web.log.every((l) => /^(GET|HEAD) \/layouts\/app\/(index\.json|blobs\/sha256\/[0-9a-f]{64})$/.test(l)),
    web.log.join('\n'),
  );

  // Redirects are followed (static hosting moves folders and fronts them with CDNs), and a layout with one image needs no tag.
  const moved = await sluiceCopy(`oci-http:${web.url}/moved/layouts/app`, `docker://${reg.host}/web/moved:v1`, [
    '--all',
  ]);
  assert.equal(moved.digest, idx.digest);
  await assertIntact(reg.url, 'web/moved', 'v1', idx);

  // Read-only: nothing is ever sent to the web server, and saying so is an error, not an attempt.
  const before = web.log.length;
  const write = await sluice([
    'copy',
    '--all',
    `docker://${reg.host}/web/app:v1`,
    `oci-http:${web.url}/layouts/other:v1`,
  ]);
  assert.notEqual(write.code, 0);
  assert.match(write.stderr, /read-only/);
  assert.equal(web.log.length, before);

  // A URL that holds no layout says so.
  const none = await sluice(['copy', `oci-http:${web.url}/nothing:v1`, `docker://${reg.host}/web/none:v1`]);
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /not an OCI image layout/);
});

test('oci-http: references put the tag after the last path segment', () => {
  assert.deepEqual(parseHttpLayoutReference('https://host:8443/layouts/app:v1'), {
    url: 'https://host:8443/layouts/app',
    ref: 'v1',
  });
  assert.deepEqual(parseHttpLayoutReference('http://host:8080/app'), { url: 'http://host:8080/app' });
  assert.deepEqual(parseHttpLayoutReference('http://host/app:sha256:' + 'b'.repeat(64)), {
    url: 'http://host/app',
    ref: 'sha256:' + 'b'.repeat(64),
  });
  assert.deepEqual(parseHttpLayoutReference('http://host:8080'), { url: 'http://host:8080' });
  assert.throws(() => parseHttpLayoutReference('ftp://host/app'), /expected oci-http:http\(s\)/);
});

test('oci-http: over HTTPS verifies the certificate unless --src-tls-verify=false', async (t) => {
  if (!needTools(t, 'openssl')) return;
  const pki = await makePki();
  t.after(() => pki.cleanup());
  const dir = await mkdtemp(join(tmpdir(), 'sluice-static-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const idx = await makeMultiArch('static-tls');
  await writeOciLayout(join(dir, 'app'), [{ tag: 'v1', image: idx }]);
  const web = await serveDirectory(dir, { cert: await readFile(pki.serverCert), key: await readFile(pki.serverKey) });
  t.after(() => web.close());
  const reg = await startRegistry();
  t.after(() => reg.close());

  // The certificate is signed by a CA this machine does not trust.
  const refused = await sluice(['copy', '--all', `oci-http:${web.url}/app:v1`, `docker://${reg.host}/tls/app:v1`]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /certificate/i);
  const out = await sluiceCopy(`oci-http:${web.url}/app:v1`, `docker://${reg.host}/tls/app:v1`, [
    '--all',
    '--src-tls-verify=false',
  ]);
  assert.equal(out.digest, idx.digest);
  await assertIntact(reg.url, 'tls/app', 'v1', idx);
});
