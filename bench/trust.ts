// The trust workload (issue 12): what enforcing a signature requirement costs a warm manifest pull. The
// same Sluice config is started twice, once with a `trust:` rule (on: pull) covering the repository and
// once without a `trust:` section, each holding the same signed image; a manifest GET by tag is then
// timed on both, as workload 3 does. The Distribution column of these rows is Sluice without the rule.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { parse } from 'yaml';
import { validateConfig } from '../src/config/load.js';
import { buildRegistry, type Registry } from '../src/registry/server.js';
import { checkPull } from '../src/registry/trust-pull.js';
import { StorageSource } from '../src/transport/storage-source.js';
import type { RepositoryName } from '../src/oci/name.js';
import type { FastifyRequest } from 'fastify';
import { join } from 'node:path';
import { copyImage } from '../src/copy/copy.js';
import { signImage } from '../src/sign/index.js';
import { openDestination, openSource } from '../src/transport/index.js';
import { load } from './load.js';
import type { MetricInfo } from './report.js';
import { startServer, type BenchServer, type ServerOptions } from './servers.js';
import { pushSmallImage, type Sample } from './workloads.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const REPO = 'bench/signed';

/** The rows this workload fills, per connection count. */
export function trustMetrics(connections: number[]): MetricInfo[] {
  const m: MetricInfo[] = [];
  for (const c of connections) {
    const label = `trust: warm manifest GET by tag, signature required, ${c} conn (Dist column: same Sluice, no requirement)`;
    m.push({ id: `trust.get-tag.c${c}.rps`, label: `${label}, req/s`, unit: 'req/s', better: 'higher' });
    m.push({ id: `trust.get-tag.c${c}.p50`, label: `${label}, p50`, unit: 'ms', better: 'lower' });
    m.push({ id: `trust.get-tag.c${c}.p99`, label: `${label}, p99`, unit: 'ms', better: 'lower' });
    m.push({ id: `trust.get-tag.c${c}.cpu`, label: `${label}, server CPU per request`, unit: 'µs', better: 'lower' });
  }
  m.push(
    {
      id: 'trust.inject.us',
      label:
        'trust: warm manifest GET by tag in process (inject), signature required (Dist column: same registry, trust off)',
      unit: 'µs',
      better: 'lower',
    },
    {
      id: 'trust.check.us',
      label: 'trust: the warm signature check alone (approval cached), per pull (Dist column: trust off)',
      unit: 'µs',
      better: 'lower',
    },
    {
      id: 'trust.recheck.us',
      label:
        'trust: a recheck once the approval expired (signatures read from storage, checks cached; Dist column: none)',
      unit: 'µs',
      better: 'lower',
    },
  );
  return m;
}

/** The key the bench signs with, and its public half on disk for the config. */
export interface TrustBench {
  key: KeyObject;
  publicKeyPath: string;
}

/** Writes a fresh P-256 key pair's public key under `work`. */
export async function prepareTrust(work: string): Promise<TrustBench> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const publicKeyPath = join(work, 'trust-bench.pub');
  await writeFile(publicKeyPath, publicKey.export({ type: 'spki', format: 'pem' }).toString());
  return { key: privateKey, publicKeyPath };
}

function trustYaml(bench: TrustBench): string {
  return `trust:\n  keys: {bench: ${JSON.stringify(bench.publicKeyPath)}}\n  require:\n    - images: ["${REPO}"]\n      keys: [bench]\n      on: [pull]\n`;
}

/** The enforcing server's own name (http.host): the rule judges signatures against it, never a request's Host. */
const ENFORCING_HOST = 'registry.bench';

function server(bench: TrustBench, required: boolean, opts: ServerOptions): Promise<BenchServer> {
  const env = required ? { ...opts.env, SLUICE_HTTP_HOST: `http://${ENFORCING_HOST}` } : opts.env;
  return startServer('sluice', {
    ...opts,
    ...(env ? { env } : {}),
    extraConfig: `${opts.extraConfig ?? ''}${required ? trustYaml(bench) : ''}`,
  });
}

/** What seeding needs of a server: where it listens. */
type Seedable = Pick<BenchServer, 'url' | 'host'>;

async function getStatus(s: Seedable, tag: string): Promise<number> {
  const r = await fetch(`${s.url}/v2/${REPO}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
  await r.arrayBuffer();
  return r.status;
}

/**
 * Puts the same signed image on both servers. The server with the rule will not show an unsigned image
 * to an anonymous signer, so the image is signed on the other one, for the name the rule judges
 * (the enforcing server's http.host and the repository), and copied over with its signature.
 */
async function seed(bench: TrustBench, on: Seedable, off: Seedable): Promise<void> {
  await pushSmallImage(off.url, REPO, 'latest');
  await signImage(`docker://${off.host}/${REPO}:latest`, bench.key, {
    identity: `${ENFORCING_HOST}/${REPO}:latest`,
    transport: { tlsVerify: false },
  });
  const src = await openSource(`docker://${off.host}/${REPO}:latest`, { tlsVerify: false });
  const dst = await openDestination(`docker://${on.host}/${REPO}:latest`, { tlsVerify: false });
  try {
    await copyImage(src, dst, { withReferrers: true });
  } finally {
    await src.close();
    await dst.close();
  }
  for (const s of [on, off])
    if ((await getStatus(s, 'latest')) !== 200) throw new Error(`the signed image does not pull from ${s.url}`);
  // The rule must really be enforced: another tag of the same digest is not what was signed.
  await pushSmallImage(on.url, REPO, 'unsigned-probe');
  const refused = await getStatus(on, 'unsigned-probe');
  if (refused !== 403)
    throw new Error(`an image the signature does not name pulled with ${refused}: the trust rule is not enforced`);
}

/**
 * One round: both servers up, then at each connection count the two are loaded one after the other
 * (which goes first alternates by round), so drift on a shared machine hits both alike.
 */
export async function trustRound(
  bench: TrustBench,
  round: number,
  connections: number[],
  seconds: number,
  withRule: Sample,
  without: Sample,
  opts: ServerOptions = {},
): Promise<void> {
  const on = await server(bench, true, opts);
  const off = await server(bench, false, opts).catch(async (e) => {
    await on.stop();
    throw e;
  });
  try {
    await seed(bench, on, off);
    const pairs: [BenchServer, Sample][] =
      round % 2 === 0
        ? [
            [off, without],
            [on, withRule],
          ]
        : [
            [on, withRule],
            [off, without],
          ];
    for (const c of connections) {
      for (const [s, out] of pairs) {
        // A short warm-up so both measure the warm path (approvals cached, connections open).
        await load(`${s.url}/v2/${REPO}/manifests/latest`, 'GET', c, 0.3, { accept: OCI_MANIFEST });
        const cpu0 = s.cpuMs();
        const r = await load(`${s.url}/v2/${REPO}/manifests/latest`, 'GET', c, seconds, { accept: OCI_MANIFEST });
        out[`trust.get-tag.c${c}.cpu`] = ((s.cpuMs() - cpu0) * 1000) / Math.max(r.requests, 1);
        if (r.errors > 0 || r.requests === 0)
          throw new Error(`trust GET at ${c} connections: ${r.errors} errors, ${r.requests} answered`);
        out[`trust.get-tag.c${c}.rps`] = r.rps;
        out[`trust.get-tag.c${c}.p50`] = r.p50;
        out[`trust.get-tag.c${c}.p99`] = r.p99;
      }
    }
  } finally {
    await Promise.all([on.stop(), off.stop()]);
  }
}

/**
 * The same comparison without the network, a second process or a second storage: one registry in this
 * process, its trust section switched on and off (undefined is what a config without `trust:` builds)
 * between alternating batches of 200 warm GETs through Fastify's inject, so whatever else the machine
 * does falls on both alike. Also times the warm check alone (`checkPull`, the approval lookup).
 */
export async function trustInProcess(
  bench: TrustBench,
  seconds: number,
  withRule: Sample,
  without: Sample,
): Promise<void> {
  const dirs = await Promise.all([
    mkdtemp(join(tmpdir(), 'sluice-bench-trust-')),
    mkdtemp(join(tmpdir(), 'sluice-bench-trust-')),
  ]);
  const regs = dirs.map((dir, i) => {
    const raw = {
      log: { level: 'silent' },
      http: { addr: '127.0.0.1:0', ...(i === 0 ? { host: `http://${ENFORCING_HOST}` } : {}) },
      storage: { filesystem: { rootdirectory: dir } },
      ...(i === 0 ? parse(trustYaml(bench)) : {}),
    };
    return buildRegistry({ config: validateConfig(raw).config, logger: false });
  });
  try {
    const [on, helper] = await Promise.all(
      regs.map(async (r) => {
        const url = await r.app.listen({ host: '127.0.0.1', port: 0 });
        return { url, host: url.replace(/^http:\/\//, '') };
      }),
    );
    await seed(bench, on!, helper!);
    const reg = regs[0]!;
    const trust = reg.ctx.trust;
    if (!trust) throw new Error('the trust section did not load');
    const ab = await injectTrustAB(reg, `/v2/${REPO}/manifests/latest`, on!.host, seconds);
    withRule['trust.inject.us'] = ab.on;
    without['trust.inject.us'] = ab.off;
    // The check alone, warm: what a pull pays for enforcement once its approval is cached.
    const digest = (await reg.ctx.repo(REPO as RepositoryName).resolveTag('latest'))!;
    const req = { method: 'GET', headers: { host: on!.host } } as unknown as FastifyRequest;
    const served = {
      name: REPO as RepositoryName,
      reference: 'latest',
      digest,
      bytes: (await reg.ctx.repo(REPO as RepositoryName).getManifest(digest))!.bytes,
    };
    await checkPull(reg.ctx, req, served);
    const calls = 20_000;
    const t = performance.now();
    for (let n = 0; n < calls; n++) await checkPull(reg.ctx, req, served);
    withRule['trust.check.us'] = ((performance.now() - t) * 1000) / calls;
    reg.ctx.trust = undefined;
    const t0 = performance.now();
    for (let n = 0; n < calls; n++) await checkPull(reg.ctx, req, served);
    without['trust.check.us'] = ((performance.now() - t0) * 1000) / calls;
    reg.ctx.trust = trust;
    // What a pull pays when its approval has expired: discovery from storage, checks from the verification cache.
    const repo = reg.ctx.repo(REPO as RepositoryName);
    const ref = `${ENFORCING_HOST}/${REPO}:latest`;
    const t2 = performance.now();
    for (let n = 0; n < 100; n++) {
      const v = await trust.check(new StorageSource(repo, reg.ctx.blobs, digest), REPO, 'pull', digest, ref);
      if (!v.allowed) throw new Error(`the recheck refused: ${v.reason}`);
    }
    withRule['trust.recheck.us'] = ((performance.now() - t2) * 1000) / 100;
    // Without a requirement nothing is ever rechecked.
    without['trust.recheck.us'] = 0;
  } finally {
    await Promise.all(regs.map((r) => r.app.close()));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}

/**
 * µs per warm manifest GET through `inject`, with the registry's trust section on and off in alternating batches
 * of 200 (medians), so the machine's drift hits both alike.
 */
export async function injectTrustAB(
  reg: Registry,
  url: string,
  host: string,
  seconds: number,
): Promise<{ on: number; off: number }> {
  const trust = reg.ctx.trust;
  if (!trust) throw new Error('the trust section did not load');
  const headers = { host, accept: OCI_MANIFEST };
  const batch = async (enforce: boolean): Promise<number> => {
    reg.ctx.trust = enforce ? trust : undefined;
    const t = performance.now();
    for (let n = 0; n < 200; n++) {
      const r = await reg.app.inject({ method: 'GET', url, headers });
      if (r.statusCode !== 200) throw new Error(`in-process GET answered ${r.statusCode}: ${r.body}`);
    }
    return ((performance.now() - t) * 1000) / 200;
  };
  const times: [number[], number[]] = [[], []];
  const deadline = performance.now() + seconds * 1000;
  try {
    for (let k = 0; performance.now() < deadline || k < 4; k++) {
      for (const enforce of k % 2 === 0 ? [true, false] : [false, true])
        times[enforce ? 0 : 1].push(await batch(enforce));
    }
  } finally {
    reg.ctx.trust = trust;
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { on: median(times[0]), off: median(times[1]) };
}
