import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runOk, type RunResult } from './tools.js';

/**
 * A scratch directory for one test; `cleanup` removes it. Its name is lower case because podman names
 * an image pulled from `oci:DIR` after DIR, and a reference must be lower case.
 */
export async function scratch(prefix = 'sluice-client-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = join(tmpdir(), `${prefix}${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Runs skopeo and throws with its output on failure. */
export function skopeo(args: string[]): Promise<RunResult> {
  return runOk('skopeo', args);
}

/** Runs skopeo and returns its result whatever the exit code (for expected failures). */
export function skopeoMay(args: string[]): Promise<RunResult> {
  return run('skopeo', args);
}

/** `skopeo inspect --raw` of a reference: the exact manifest bytes. */
export async function inspectRaw(ref: string): Promise<Buffer> {
  const r = await skopeo(['inspect', '--raw', '--tls-verify=false', ref]);
  // skopeo writes the bytes as they are, with no newline added.
  return Buffer.from(r.stdout, 'utf8');
}

/** `skopeo copy` with TLS verification off on both sides; `extra` comes before the references. */
export async function skopeoCopy(src: string, dest: string, extra: string[] = []): Promise<RunResult> {
  return skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ...extra, src, dest]);
}

/** A podman bound to its own vfs storage under `dir`, so tests never share images. */
export function podmanIn(dir: string): {
  run: (args: string[]) => Promise<RunResult>;
  runMay: (args: string[]) => Promise<RunResult>;
} {
  const base = [
    '--storage-driver',
    'vfs',
    '--root',
    join(dir, 'root'),
    '--runroot',
    join(dir, 'rr'),
    '--events-backend',
    'file',
  ];
  return {
    run: (args) => runOk('podman', [...base, ...args]),
    runMay: (args) => run('podman', [...base, ...args]),
  };
}

/** A free TCP port on 127.0.0.1 (for daemons that cannot listen on port 0 and report it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers with any HTTP status, or fails after `timeoutMs`. */
export async function waitForHttp(url: string, child?: ChildProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null)
      throw new Error(`process exited with ${child.exitCode} before ${url} answered`);
    try {
      // Bounded per try: a port taken meanwhile by something that accepts and never answers must not hang the wait.
      const r = await fetch(url, {
        signal: AbortSignal.timeout(Math.max(100, Math.min(5_000, deadline - Date.now()))),
      });
      await r.arrayBuffer();
      return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms: ${String(last)}`);
}

/** A running Distribution (`docker-registry`) for a test. */
export interface Distribution {
  url: string;
  host: string;
  stop(): Promise<void>;
}

/**
 * Starts Distribution 2.8 on a free port serving `root` (the same layout Sluice uses), a folder or an
 * S3 bucket (a `storage.s3` block), with `extra` config lines (`auth: {htpasswd: …}`); stop it in `finally`.
 */
export async function startDistribution(
  root: string | { s3: Record<string, unknown> },
  extra: string[] = [],
): Promise<Distribution> {
  if (typeof root === 'string') await mkdir(root, { recursive: true });
  const storage = typeof root === 'string' ? { filesystem: { rootdirectory: root } } : root;
  // Its s3 driver panics at start when AWS_CA_BUNDLE is set (CLIENTS.md).
  const env = { ...process.env };
  delete env['AWS_CA_BUNDLE'];
  const conf = await mkdtemp(join(tmpdir(), 'sluice-distribution-'));
  let lastError: unknown;
  // A port found free can be taken before the daemon binds it; try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const cfg = join(conf, 'config.yml');
    await writeFile(
      cfg,
      [
        'version: 0.1',
        'log: {level: error}',
        `storage: ${JSON.stringify({ ...storage, delete: { enabled: true } })}`,
        `http: {addr: 127.0.0.1:${port}}`,
        ...extra,
        '',
      ].join('\n'),
    );
    const child = spawn('docker-registry', ['serve', cfg], { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<void>((res) => child.once('exit', () => res()));
    const stop = async (): Promise<void> => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
    };
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitForHttp(`${url}/v2/`, child);
      return {
        url,
        host: `127.0.0.1:${port}`,
        stop: async () => {
          await stop();
          await rm(conf, { recursive: true, force: true });
        },
      };
    } catch (e) {
      lastError = new Error(`${(e as Error).message}\n${stderr}`);
      await stop();
    }
  }
  await rm(conf, { recursive: true, force: true });
  throw lastError;
}

/** Reads an OCI layout's index.json and returns the digest tagged `tag`. */
export async function layoutDigest(dir: string, tag: string): Promise<string> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const hit = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!hit) throw new Error(`no manifest tagged ${tag} in ${dir}`);
  return hit.digest;
}

/** Reads a blob of an OCI layout by digest. */
export function layoutBlob(dir: string, digest: string): Promise<Buffer> {
  const [alg, hex] = digest.split(':') as [string, string];
  return readFile(join(dir, 'blobs', alg, hex));
}
