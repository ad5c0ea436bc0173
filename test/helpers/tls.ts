import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { validateConfig } from '../../src/config/load.js';
import { buildRegistry, type Registry } from '../../src/registry/server.js';
import { runOk } from './tools.js';

/**
 * A registry name that resolves nowhere. dockerd treats every registry on 127.0.0.0/8 as insecure (it then
 * skips certificate checks and reads no certs.d), so a test that wants dockerd to verify Sluice's certificate
 * and present a client certificate names the registry this way and sends dockerd through a CONNECT proxy.
 */
export const UNRESOLVABLE_HOST = 'sluice-tls.invalid';

/** Certificates made with openssl for one test: a CA, a server certificate for 127.0.0.1, localhost and UNRESOLVABLE_HOST, client certificates. */
export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** Signed by the CA, for client authentication. */
  clientCert: string;
  clientKey: string;
  /** A second CA and a client certificate it signed: valid, but not from the CA the server trusts. */
  otherCaCert: string;
  strangerCert: string;
  strangerKey: string;
  cleanup(): Promise<void>;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  await runOk('openssl', [
    'req',
    '-x509',
    ...EC,
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    `/CN=Sluice test ${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { cert, key };
}

async function makeLeaf(
  dir: string,
  name: string,
  ca: { cert: string; key: string },
  cn: string,
  ext: string,
): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.cert`);
  const extFile = join(dir, `${name}.ext`);
  await writeFile(extFile, `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n${ext}\n`);
  await runOk('openssl', ['req', ...EC, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  await runOk('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-out',
    cert,
    '-days',
    '2',
    '-extfile',
    extFile,
  ]);
  return { cert, key };
}

/** Makes a CA, a server certificate (SAN IP:127.0.0.1, DNS:localhost) and client certificates in a temporary folder. */
export async function makePki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-pki-'));
  try {
    const ca = await makeCa(dir, 'ca');
    const other = await makeCa(dir, 'other-ca');
    const server = await makeLeaf(
      dir,
      'server',
      ca,
      'localhost',
      `subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:${UNRESOLVABLE_HOST}\nextendedKeyUsage=serverAuth`,
    );
    const client = await makeLeaf(dir, 'client', ca, 'sluice-client', 'extendedKeyUsage=clientAuth');
    const stranger = await makeLeaf(dir, 'stranger', other, 'stranger', 'extendedKeyUsage=clientAuth');
    return {
      dir,
      caCert: ca.cert,
      serverCert: server.cert,
      serverKey: server.key,
      clientCert: client.cert,
      clientKey: client.key,
      otherCaCert: other.cert,
      strangerCert: stranger.cert,
      strangerKey: stranger.key,
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/** Writes a client certificate folder as skopeo, podman and dockerd read it: ca.crt, and client.cert/client.key when given. */
export async function writeCertDir(dir: string, pki: TestPki, client?: { cert: string; key: string }): Promise<void> {
  await writeFile(join(dir, 'ca.crt'), await readFile(pki.caCert));
  if (client) {
    await writeFile(join(dir, 'client.cert'), await readFile(client.cert));
    await writeFile(join(dir, 'client.key'), await readFile(client.key), { mode: 0o600 });
  }
}

/** A registry serving HTTPS for one test, started from an `http.tls` block. */
export interface TlsRegistry extends Registry {
  /** `https://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT`, as clients name it. */
  host: string;
  port: number;
  close(): Promise<void>;
}

/** Starts Sluice with `http.tls` (and any other config) on 127.0.0.1 and a free port, storage in a fresh folder. */
export async function startTlsRegistry(
  tls: Record<string, unknown>,
  config: Record<string, unknown> = {},
): Promise<TlsRegistry> {
  const root = await mkdtemp(join(tmpdir(), 'sluice-tls-'));
  const { config: cfg } = validateConfig({
    log: { level: 'silent' },
    storage: { filesystem: { rootdirectory: root }, delete: { enabled: true } },
    ...config,
    http: { addr: '127.0.0.1:0', tls },
  });
  const reg = buildRegistry({ config: cfg, logger: false });
  const address = await reg.app.listen({ host: '127.0.0.1', port: 0 });
  const host = address.replace(/^https:\/\//, '');
  return {
    ...reg,
    url: address,
    host,
    port: Number(host.split(':')[1]),
    close: async () => {
      await reg.app.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Options for an HTTPS request from Node (undici): the CA to trust, a client certificate, TLS versions. */
export interface TlsClientOptions {
  ca?: string;
  cert?: string;
  key?: string;
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/** GETs `url` over HTTPS with undici and the given TLS settings; resolves with the status and body text. */
export async function tlsGet(url: string, opts: TlsClientOptions): Promise<{ status: number; body: string }> {
  const agent = new Agent({
    connect: {
      ca: opts.ca ? await readFile(opts.ca) : undefined,
      cert: opts.cert ? await readFile(opts.cert) : undefined,
      key: opts.key ? await readFile(opts.key) : undefined,
      maxVersion: opts.maxVersion,
      timeout: 10_000,
    },
  });
  try {
    const r = await request(url, { dispatcher: agent, headersTimeout: 10_000, bodyTimeout: 10_000 });
    return { status: r.statusCode, body: await r.body.text() };
  } finally {
    await agent.close().catch(() => undefined);
  }
}

/** A CONNECT proxy on 127.0.0.1 that tunnels UNRESOLVABLE_HOST:PORT to 127.0.0.1:PORT and refuses everything else. */
export interface ConnectProxy {
  url: string;
  /** Hosts clients asked to tunnel to, in order. */
  tunnels: string[];
  close(): Promise<void>;
}

/** Starts the CONNECT proxy that lets dockerd reach a TLS registry on loopback under a non-loopback name. */
export async function startConnectProxy(): Promise<ConnectProxy> {
  const tunnels: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req, client: Socket) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    const target = req.url ?? '';
    tunnels.push(target);
    const m = /^([^:]+):(\d+)$/.exec(target);
    if (!m || m[1] !== UNRESOLVABLE_HOST) {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const upstream = connect(Number(m[2]), '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    tunnels,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
}
