// The passthrough workload (issue 11): seeding an empty Docker daemon from another with `sluice passthrough`
// (one export stream, shared layers once, one load) against `docker save NAME | docker load` per image, as
// the box project's dind entrypoint does, on the same two daemons. The Distribution column holds the latter.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createWriteStream, existsSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import tar from 'tar-stream';
import type { MetricInfo } from './report.js';
import { hasCommand } from './servers.js';
import type { Sample } from './workloads.js';

const MiB = 1024 * 1024;
const SLUICE_BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));
const DOCKER = existsSync('/usr/local/bin/docker') ? '/usr/local/bin/docker' : 'docker';

/** The rows this workload fills. */
export const PASSTHROUGH_METRICS: MetricInfo[] = [
  // The Distribution column of these rows is `docker save NAME | docker load`, one image at a time.
  {
    id: 'passthrough.first',
    label: 'passthrough: 5 images sharing a base into an empty daemon (Dist column: save|load per image)',
    unit: 's',
    better: 'lower',
  },
  {
    id: 'passthrough.again',
    label: 'passthrough: second run, nothing new (Dist column: save|load per image again)',
    unit: 's',
    better: 'lower',
  },
];

/** Sizes of the passthrough images. */
export interface PassthroughSizes {
  images: number;
  baseBytes: number;
  ownBytes: number;
}

interface Daemon {
  host: string;
  stop(): Promise<void>;
}

/** Two daemons, the host holding the bench images. */
export interface PassthroughBench {
  host: Daemon;
  inner: Daemon;
  names: string[];
  stop(): Promise<void>;
}

function sh(cmd: string): void {
  const r = spawnSync('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
}

async function startDaemon(dir: string): Promise<Daemon> {
  await mkdir(dir, { recursive: true });
  const socket = join(dir, 'docker.sock');
  const log = openSync(join(dir, 'dockerd.log'), 'w');
  const child: ChildProcess = spawn(
    'dockerd',
    [
      '--storage-driver=vfs',
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'pid'),
      '--host',
      `unix://${socket}`,
    ],
    { stdio: ['ignore', log, log] },
  );
  closeSync(log);
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const host = `unix://${socket}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  };
  for (let i = 0; i < 300 && child.exitCode === null; i++) {
    if (existsSync(socket) && spawnSync(DOCKER, ['-H', host, 'version'], { stdio: 'ignore' }).status === 0)
      return { host, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`dockerd in ${dir} did not become ready`);
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

async function layerTar(name: string, bytes: number): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((res, rej) => {
    pack.on('end', res);
    pack.on('error', rej);
  });
  pack.entry({ name, size: bytes, mode: 0o644, mtime: new Date(0) }, randomBytes(bytes));
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Writes one `docker save` archive holding every bench image; the base layer is in it once. */
async function writeArchive(file: string, sizes: PassthroughSizes): Promise<string[]> {
  const out = tar.pack();
  const written = pipeline(out, createWriteStream(file));
  const add = (name: string, data: Buffer) =>
    new Promise<void>((res, rej) =>
      out.entry({ name, size: data.length, mtime: new Date(0) }, data, (e) => (e ? rej(e) : res())),
    );
  const base = await layerTar('base.bin', sizes.baseBytes);
  const baseId = sha256(base);
  await add(`${baseId}/layer.tar`, base);
  const manifest = [];
  const names: string[] = [];
  for (let i = 0; i < sizes.images; i++) {
    const own = await layerTar(`own-${i}.bin`, sizes.ownBytes);
    const ownId = sha256(own);
    await add(`${ownId}/layer.tar`, own);
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Labels: { bench: `passthrough-${i}` } },
        rootfs: { type: 'layers', diff_ids: [`sha256:${baseId}`, `sha256:${ownId}`] },
        history: [{ created_by: 'bench base' }, { created_by: `bench image ${i}` }],
      }),
    );
    const configName = `${sha256(config)}.json`;
    await add(configName, config);
    const name = `bench/passthrough-${i}:1`;
    names.push(name);
    manifest.push({ Config: configName, RepoTags: [name], Layers: [`${baseId}/layer.tar`, `${ownId}/layer.tar`] });
  }
  await add('manifest.json', Buffer.from(JSON.stringify(manifest)));
  out.finalize();
  await written;
  return names;
}

/** Starts the two daemons and loads the bench images into the host; undefined when dockerd is missing. */
export async function preparePassthrough(work: string, sizes: PassthroughSizes): Promise<PassthroughBench | undefined> {
  if (!hasCommand('dockerd') || !(existsSync(DOCKER) || hasCommand('docker'))) return undefined;
  // Unix socket paths must stay short: the daemons live under /tmp whatever the work folder is.
  const dir = await mkdtemp('/tmp/sd-bench-');
  const host = await startDaemon(join(dir, 'h'));
  const inner = await startDaemon(join(dir, 'i')).catch(async (e: unknown) => {
    await host.stop();
    throw e;
  });
  const archive = join(work, 'passthrough.tar');
  const names = await writeArchive(archive, sizes);
  sh(`${DOCKER} -H ${host.host} load -q -i ${archive}`);
  await rm(archive, { force: true });
  return {
    host,
    inner,
    names,
    stop: async () => {
      await Promise.all([host.stop(), inner.stop()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function clear(b: PassthroughBench): void {
  sh(`ids=$(${DOCKER} -H ${b.inner.host} images -q); [ -z "$ids" ] || ${DOCKER} -H ${b.inner.host} rmi -f $ids`);
}

function seconds(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** Per-image save|load as the box does it (present images skipped as it does, by `docker image inspect`). */
function saveLoad(b: PassthroughBench): void {
  for (const n of b.names) {
    sh(
      `${DOCKER} -H ${b.inner.host} image inspect ${n} >/dev/null 2>&1 || ${DOCKER} -H ${b.host.host} save ${n} | ${DOCKER} -H ${b.inner.host} load -q`,
    );
  }
}

function passthrough(b: PassthroughBench): void {
  sh(
    `${JSON.stringify(process.execPath)} ${SLUICE_BIN} passthrough --mode all --from ${b.host.host} --to ${b.inner.host} --images 'bench/**'`,
  );
}

/** One round: the box's way and Sluice's, each into an emptied target, then each again with nothing new. */
export function passthroughWorkloads(b: PassthroughBench, sluice: Sample, baseline: Sample): void {
  clear(b);
  baseline['passthrough.first'] = seconds(() => saveLoad(b));
  baseline['passthrough.again'] = seconds(() => saveLoad(b));
  clear(b);
  sluice['passthrough.first'] = seconds(() => passthrough(b));
  sluice['passthrough.again'] = seconds(() => passthrough(b));
  const got = spawnSync(DOCKER, ['-H', b.inner.host, 'images', '--format', '{{.Repository}}:{{.Tag}}'], {
    encoding: 'utf8',
  })
    .stdout.trim()
    .split('\n')
    .sort();
  if (got.join(' ') !== [...b.names].sort().join(' '))
    throw new Error(`passthrough left ${got.join(' ')} in the target, expected ${b.names.join(' ')}`);
}

/** Sizes: quick runs keep the images small. */
export function passthroughSizes(quick: boolean): PassthroughSizes {
  return quick
    ? { images: 5, baseBytes: 16 * MiB, ownBytes: 2 * MiB }
    : { images: 5, baseBytes: 256 * MiB, ownBytes: 16 * MiB };
}
