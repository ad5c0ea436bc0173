import type { Command } from 'commander';
import type { CopyOptions } from '../copy/copy.js';
import type { ProgressReporter } from '../copy/progress.js';
import { parseManifest } from '../oci/manifest.js';
import { formatPlatform, type Platform } from '../oci/platform.js';
import type { BucketOptions, TransportOptions } from '../transport/index.js';
import type { ImageSource } from '../transport/transport.js';
import { fail, failed } from './fail.js';
import type { CompressFormat } from '../copy/compress.js';
import {
  addBoolFlag,
  compressFormatValue,
  countValue,
  platformValue,
  positiveValue,
  sizeValue,
  sluiceErrors,
} from './option-values.js';

// The engine and transports load only when a command runs, so `sluice serve` does not carry them in memory.
const transports = () => import('../transport/index.js');
const engine = () => Promise.all([import('../copy/copy.js'), import('../copy/progress.js')]);

interface SideFlags {
  creds?: string;
  authfile?: string;
  tlsVerify?: boolean;
  retryTimes?: number;
  daemonHost?: string;
  chunkSize?: number;
  s3Endpoint?: string;
  s3Region?: string;
}

function transportOptions(f: SideFlags): TransportOptions & BucketOptions {
  const o: TransportOptions & BucketOptions = {};
  if (f.creds) o.creds = f.creds;
  if (f.authfile) o.authFile = f.authfile;
  if (f.tlsVerify !== undefined) o.tlsVerify = f.tlsVerify;
  if (f.retryTimes !== undefined) o.retryTimes = f.retryTimes;
  if (f.daemonHost) o.daemonHost = f.daemonHost;
  if (f.chunkSize) o.chunkSize = f.chunkSize;
  if (f.s3Endpoint) o.s3Endpoint = f.s3Endpoint;
  if (f.s3Region) o.s3Region = f.s3Region;
  return o;
}

interface CopyFlags {
  all?: boolean;
  platform?: Platform[];
  rewriteIndex?: boolean;
  jobs: number;
  preserveDigests?: boolean;
  withReferrers?: boolean;
  policy?: string;
  config?: string;
  quiet?: boolean;
  json?: boolean;
  srcCreds?: string;
  destCreds?: string;
  authfile?: string;
  srcAuthfile?: string;
  destAuthfile?: string;
  srcTlsVerify?: boolean;
  destTlsVerify?: boolean;
  tlsVerify?: boolean;
  retryTimes?: number;
  daemonHost?: string;
  srcDaemonHost?: string;
  destDaemonHost?: string;
  destChunkSize?: number;
  destCompressFormat?: CompressFormat;
  s3Endpoint?: string;
  srcS3Endpoint?: string;
  destS3Endpoint?: string;
  s3Region?: string;
}

/** `sluice copy SRC DST`. */
async function copyCommand(srcRef: string, dstRef: string, f: CopyFlags): Promise<void> {
  const [{ copyImage }, { barProgress, lineProgress, quietProgress }] = await engine();
  const { openSource, openDestination } = await transports();
  const platforms = f.platform;
  if (f.all && platforms?.length) fail('--all and --platform exclude each other');
  if (f.rewriteIndex && !platforms?.length) fail('--rewrite-index needs --platform');
  const srcOpts = transportOptions({
    creds: f.srcCreds,
    authfile: f.srcAuthfile ?? f.authfile,
    tlsVerify: f.srcTlsVerify ?? f.tlsVerify,
    retryTimes: f.retryTimes,
    daemonHost: f.srcDaemonHost ?? f.daemonHost,
    s3Endpoint: f.srcS3Endpoint ?? f.s3Endpoint,
    s3Region: f.s3Region,
  });
  const dstOpts = transportOptions({
    creds: f.destCreds,
    authfile: f.destAuthfile ?? f.authfile,
    tlsVerify: f.destTlsVerify ?? f.tlsVerify,
    retryTimes: f.retryTimes,
    daemonHost: f.destDaemonHost ?? f.daemonHost,
    chunkSize: f.destChunkSize,
    s3Endpoint: f.destS3Endpoint ?? f.s3Endpoint,
    s3Region: f.s3Region,
  });
  let progress: ProgressReporter;
  if (f.quiet) progress = quietProgress();
  else if (f.json) progress = quietProgress(process.stderr);
  else if (process.stderr.isTTY) progress = barProgress(process.stderr);
  else progress = lineProgress(process.stderr);

  const opts: CopyOptions = { jobs: f.jobs, progress };
  if (f.all) opts.all = true;
  if (platforms?.length) opts.platforms = platforms;
  if (f.rewriteIndex) opts.rewriteIndex = true;
  if (f.preserveDigests) opts.preserveDigests = true;
  if (f.withReferrers) opts.withReferrers = true;
  if (f.retryTimes !== undefined) opts.retryTimes = f.retryTimes;
  if (f.destCompressFormat) opts.compressFormat = f.destCompressFormat;

  let src: ImageSource | undefined;
  let dst: Awaited<ReturnType<typeof openDestination>> | undefined;
  try {
    src = await openSource(srcRef, srcOpts);
    if (f.policy) {
      // containers-policy.json, as skopeo reads it: nothing is written unless the source image satisfies it.
      const { loadPolicyFile, locateImage, requirementsFor, checkImageTrust } = await import('../sign/index.js');
      const policy = await loadPolicyFile(f.policy);
      const location = locateImage(srcRef);
      const { scope, requirements } = requirementsFor(policy, location.subject);
      const top = await src.getManifest();
      const check = await checkImageTrust(
        src,
        { digest: top.digest, ...(location.dockerReference ? { dockerReference: location.dockerReference } : {}) },
        requirements,
        { scope },
      );
      if (!check.decision.allowed) throw new Error(`${srcRef} is refused by ${f.policy}: ${check.decision.summary}`);
      // What the policy asked for travels with the image, so the destination can check it too.
      if (requirements.some((r) => r.type === 'sigstoreSigned')) {
        opts.withReferrers = true;
        opts.evidenceOnly = true;
      }
    }
    if (f.config) {
      // A Sluice config's trust: rules with `on: copy` judge the source by its full name.
      const [{ loadConfig }, { buildTrust }, { locateImage }] = await Promise.all([
        import('../config/load.js'),
        import('../registry/trust-setup.js'),
        import('../sign/index.js'),
      ]);
      const trust = buildTrust((await loadConfig(f.config)).config);
      const name = locateImage(srcRef).dockerReference?.replace(/[:@][^/]*$/, '');
      if (trust && name && trust.ruleFor(name, 'copy')) {
        const top = await src.getManifest();
        const verdict = await trust.check(src, name, 'copy', top.digest, locateImage(srcRef).dockerReference!);
        if (!verdict.allowed) throw new Error(`${srcRef} is refused: ${verdict.reason}`);
        opts.withReferrers = true;
        opts.evidenceOnly = true;
      }
    }
    dst = await openDestination(dstRef, dstOpts);
    const summary = await copyImage(src, dst, opts);
    progress.stop();
    if (f.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    // An archive or daemon holds the config and layers but no manifest: name what it holds, the image ID.
    else if (!f.quiet)
      process.stderr.write(
        `copied ${summary.source} to ${summary.destination} (${summary.imageId ? `image ID ${summary.imageId}` : summary.digest})\n`,
      );
  } catch (e) {
    progress.stop();
    failed(e);
  } finally {
    await src?.close().catch(() => undefined);
    await dst?.close().catch(() => undefined);
  }
}

async function readConfig(
  src: ImageSource,
  m: ReturnType<typeof parseManifest>,
): Promise<Record<string, unknown> | undefined> {
  if (m.kind !== 'image' || m.config.size > 4 * 1024 * 1024) return undefined;
  const chunks: Buffer[] = [];
  for await (const c of await src.getBlob(m.config)) chunks.push(c as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** `sluice inspect REF`: what skopeo inspect shows, for any transport. */
async function inspectCommand(
  ref: string,
  f: { raw?: boolean; config?: boolean; tags?: boolean } & SideFlags,
): Promise<void> {
  const { openSource } = await transports();
  let src: ImageSource | undefined;
  try {
    src = await openSource(ref, transportOptions(f));
    const top = await src.getManifest();
    if (f.raw && !f.config) {
      process.stdout.write(top.bytes);
      return;
    }
    const m = parseManifest(top.bytes, top.mediaType);
    const config = await readConfig(src, m);
    if (f.config) {
      if (!config) throw new Error(`${ref} is an index: inspect one of its manifests for a config`);
      process.stdout.write(`${JSON.stringify(config, null, f.raw ? undefined : 2)}\n`);
      return;
    }
    const out: Record<string, unknown> = {
      Name: src.description,
      Digest: top.digest,
      MediaType: top.mediaType,
      Size: top.bytes.length,
    };
    if (f.tags !== false && src.listTags) out.RepoTags = await src.listTags().catch(() => []);
    if (m.kind === 'index') {
      out.Platforms = m.manifests.filter((d) => d.platform).map((d) => formatPlatform(d.platform!));
      out.Manifests = m.manifests.map((d) => ({
        digest: d.digest,
        mediaType: d.mediaType,
        size: d.size,
        platform: d.platform ? formatPlatform(d.platform) : undefined,
      }));
    } else {
      const c = (config ?? {}) as {
        created?: string;
        architecture?: string;
        os?: string;
        variant?: string;
        config?: { Labels?: unknown; Env?: unknown };
      };
      Object.assign(out, {
        Created: c.created,
        Architecture: c.architecture,
        Os: c.os,
        Variant: c.variant,
        Labels: c.config?.Labels ?? null,
        Env: c.config?.Env ?? null,
        Config: { digest: m.config.digest, mediaType: m.config.mediaType, size: m.config.size },
        Layers: m.layers.map((l) => l.digest),
        LayersData: m.layers.map((l) => ({ MIMEType: l.mediaType, Digest: l.digest, Size: l.size })),
        TotalSize: m.layers.reduce((a, l) => a + l.size, m.config.size + top.bytes.length),
      });
    }
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } catch (e) {
    failed(e);
  } finally {
    await src?.close().catch(() => undefined);
  }
}

/** `sluice tags REF`: the tags of a repository (or the names in a layout). */
async function tagsCommand(ref: string, f: SideFlags & { json?: boolean }): Promise<void> {
  const { openSource } = await transports();
  let src: ImageSource | undefined;
  try {
    src = await openSource(ref, transportOptions(f));
    if (!src.listTags) throw new Error(`${src.description}: this transport cannot list tags`);
    const tags = await src.listTags();
    process.stdout.write(
      f.json
        ? `${JSON.stringify({ Repository: src.description, Tags: tags }, null, 2)}\n`
        : tags.map((t) => `${t}\n`).join(''),
    );
  } catch (e) {
    failed(e);
  } finally {
    await src?.close().catch(() => undefined);
  }
}

const TLS_VERIFY = 'verify TLS (the default); --tls-verify=false also allows plain HTTP';
const S3_ENDPOINT =
  'S3-compatible server for s3: (default AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS); keys from --creds ACCESS_KEY:SECRET_KEY or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY';
const S3_REGION = 'region for s3: (default AWS_REGION or AWS_DEFAULT_REGION, else us-east-1)';

function addAccessFlags(cmd: Command): Command {
  cmd
    .option('--creds <user:password>', 'registry credentials')
    .option('--authfile <file>', 'auth file (Docker config format; default ~/.docker/config.json)');
  addBoolFlag(cmd, '--tls-verify', TLS_VERIFY);
  return sluiceErrors(cmd)
    .option('--retry-times <n>', 'retries on connection errors, 5xx and 429 (default 3)', countValue)
    .option('--daemon-host <url>', 'Docker Engine endpoint for docker-daemon: (default DOCKER_HOST)')
    .option('--s3-endpoint <url>', S3_ENDPOINT)
    .option('--s3-region <region>', S3_REGION);
}

/** Adds `copy`, `inspect` and `tags` to the CLI. */
export function registerCopyCommands(program: Command): void {
  const copy = program
    .command('copy')
    .description(
      'copy an image between transports: docker://, oci:, oci-archive:, docker-archive:, docker-daemon:, s3: (an OCI layout in a bucket), oci-http: (read-only)',
    )
    .argument('<source>', 'source reference, e.g. docker://127.0.0.1:5000/app:1 or oci:dir:tag')
    .argument('<destination>', 'destination reference')
    .option('--all', 'copy every platform of an index')
    .option(
      '--platform <os/arch[/variant]>',
      'copy this platform of an index (repeatable); the index is kept unchanged',
      platformValue,
    )
    .option('--rewrite-index', 'with --platform: write a new index listing only the copied platforms (new digest)')
    .option('-j, --jobs <n>', 'blobs copied in parallel', positiveValue, 4)
    .option('--preserve-digests', 'fail instead of changing any manifest digest')
    .option('--with-referrers', 'also copy referrers and cosign sha256-<hex>.sig/.att/.sbom tags')
    .option('-c, --config <file>', 'a Sluice config whose trust: rules (on: copy) the source image must satisfy')
    .option(
      '--policy <file>',
      'a containers-policy.json the source image must satisfy (sigstoreSigned, reject, insecureAcceptAnything); its signatures are copied along',
    )
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'print a JSON summary (digests, bytes sent and skipped, duration) on stdout')
    .option('--src-creds <user:password>', 'source registry credentials')
    .option('--dest-creds <user:password>', 'destination registry credentials')
    .option('--authfile <file>', 'auth file for both sides (Docker config format; default ~/.docker/config.json)')
    .option('--src-authfile <file>', 'auth file for the source')
    .option('--dest-authfile <file>', 'auth file for the destination');
  addBoolFlag(copy, '--src-tls-verify', 'verify the source registry TLS (the default); =false also allows plain HTTP');
  addBoolFlag(
    copy,
    '--dest-tls-verify',
    'verify the destination registry TLS (the default); =false also allows plain HTTP',
  );
  addBoolFlag(copy, '--tls-verify', 'both --src-tls-verify and --dest-tls-verify');
  sluiceErrors(copy)
    .option('--retry-times <n>', 'retries on connection errors, 5xx and 429 (default 3)', countValue)
    .option(
      '--dest-chunk-size <size>',
      'upload blobs in PATCH chunks of this size: bytes, or 512k, 5MiB, 5MB (default: one PATCH per blob)',
      sizeValue,
    )
    .option(
      '--dest-compress-format <format>',
      'gzip (default), zstd or none: how layers a docker-archive: or docker-daemon: source holds uncompressed are compressed for a registry or OCI layout',
      compressFormatValue,
    )
    .option('--daemon-host <url>', 'Docker Engine endpoint for docker-daemon: (default DOCKER_HOST)')
    .option('--src-daemon-host <url>', 'Docker Engine endpoint of a docker-daemon: source')
    .option('--dest-daemon-host <url>', 'Docker Engine endpoint of a docker-daemon: destination')
    .option('--s3-endpoint <url>', S3_ENDPOINT)
    .option('--src-s3-endpoint <url>', 'S3-compatible server of an s3: source')
    .option('--dest-s3-endpoint <url>', 'S3-compatible server of an s3: destination')
    .option('--s3-region <region>', S3_REGION)
    .action(copyCommand);

  addAccessFlags(
    program
      .command('inspect')
      .description('show an image: digest, media type, platforms, config, layers')
      .argument('<reference>', 'image reference with transport, e.g. docker://host/repo:tag')
      .option('--raw', 'print the manifest bytes exactly as stored')
      .option('--config', 'print the image config (with --raw: unformatted)')
      .option('--no-tags', 'do not list the repository tags'),
  ).action(inspectCommand);

  addAccessFlags(
    program
      .command('tags')
      .description('list the tags of a repository, or the names (ref.name) in an OCI layout or archive')
      .argument('<reference>', 'repository with transport, e.g. docker://host/repo or oci:DIR')
      .option('--json', 'print as JSON'),
  ).action(tagsCommand);
}
