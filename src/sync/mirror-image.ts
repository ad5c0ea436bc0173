// One image of a run: unchanged, refused by trust, or copied (followed when its tag moved, backed up first).
import { copyImage } from '../copy/copy.js';
import type { Digest } from '../oci/digest.js';
import { isRepositoryName, type RepositoryName } from '../oci/name.js';
import { isEvidenceBytes } from '../sign/evidence.js';
import { RegistrySource } from '../transport/docker.js';
import { openDestination } from '../transport/index.js';
import { StorageDestination } from '../transport/storage-destination.js';
import type { ImageDestination } from '../transport/transport.js';
import { backupTag } from './backup.js';
import { type JobContext, type Run, saveState } from './job-context.js';
import type { Look } from './look.js';

/** Where an image of the job goes: a `to:` reference, or a repository of the registry's own storage. */
async function destination(
  ctx: JobContext,
  name: string,
  w: { tag?: string; digest?: Digest },
): Promise<ImageDestination> {
  if (ctx.config.to)
    return openDestination(`${ctx.config.to.replace(/\/+$/, '')}/${name}${w.tag ? `:${w.tag}` : `@${w.digest}`}`, {
      ...(ctx.deps.destination ?? {}),
      pool: ctx.pool,
    });
  if (!isRepositoryName(name)) throw new Error(`${name} is not a valid repository name here`);
  return new StorageDestination(ctx.deps.repo(name), ctx.deps.blobs, {
    uploads: ctx.deps.uploads,
    claim: ctx.deps.claim,
    ...(w.tag ? { tag: w.tag } : {}),
    ...(ctx.deps.changed ? { onChange: ctx.deps.changed } : {}),
  });
}

/** Brings one wanted image of a repository to its destination (or plans to, in a dry run) and records it. */
export async function mirrorImage(
  ctx: JobContext,
  run: Run,
  target: Pick<Look, 'upstream' | 'repository' | 'image' | 'dest'>,
  w: { tag?: string; digest: Digest },
): Promise<void> {
  const { upstream, repository, image, dest } = target;
  const { state, summary, step, platforms, opts } = run;
  const key = `${repository}:${w.tag ?? w.digest}`;
  const digest = w.digest;
  const previous = state.tags[key];
  const local = !ctx.config.to ? ctx.deps.repo(dest as RepositoryName) : undefined;
  const there = local
    ? w.tag
      ? (await local.resolveTag(w.tag)) === digest
      : await local.hasManifest(digest)
    : previous === digest;
  if (previous === digest && there) {
    summary.unchanged++;
    step({ action: 'unchanged', image, ...w, reason: 'upstream has not moved' });
    return;
  }
  const moved = previous !== undefined && previous !== digest;
  const what = `${dest}:${w.tag ?? w.digest}`;
  const source = `${image}${w.tag ? `:${w.tag}` : `@${digest}`}`;
  const planned = {
    action: moved ? 'move' : 'copy',
    image,
    ...(w.tag ? { tag: w.tag } : {}),
    digest,
    ...(moved ? { previous } : {}),
    destination: what,
  } as const;
  const src = new RegistrySource(
    { registry: upstream.name, repository, digest },
    { ...upstream.options, pool: ctx.pool },
  );
  const trusted = ctx.deps.trust?.ruleFor(image, 'mirror');
  try {
    // Signatures are judged before the step is announced (in a dry run too), so each tag gets one verdict:
    // a plan never says `copy` for what the run then refuses.
    // A signature, attestation or SBOM the job names (by digest) is evidence, not an image to judge.
    if (trusted && !isEvidenceBytes((await src.getManifest()).bytes)) {
      const verdict = await ctx.deps.trust!.check(src, image, 'mirror', digest, source);
      if (!verdict.allowed) {
        summary.refused.push({ image: `${image}:${w.tag ?? w.digest}`, reason: verdict.reason });
        step({ action: 'refused', image, ...w, reason: verdict.reason });
        return;
      }
    }
    step({
      ...planned,
      reason: moved ? `upstream moved from ${previous}` : previous ? 'missing at the destination' : 'new',
    });
    if (opts.dryRun) {
      (moved ? summary.moved : summary.copied).push(what);
      opts.progress?.imageDone?.(source, planned.action);
      return;
    }
    if (moved && ctx.config.backup && local && w.tag) {
      const old = await local.resolveTag(w.tag);
      if (old) await local.tag(backupTag(ctx.config.backup, w.tag, run.startedAt), old);
    }
    const dst = await destination(ctx, dest, w);
    const blobs = opts.progress?.copying?.(source, what);
    try {
      await copyImage(src, dst, {
        ...(platforms ? { platforms, rewriteIndex: ctx.config.rewriteindex ?? false } : { all: true }),
        // A signature the job was asked to check travels with the image, so pulls at the destination can check it too.
        withReferrers: (ctx.config.referrers ?? false) || trusted !== undefined,
        ...(trusted ? { evidenceOnly: true } : {}),
        ...(blobs ? { progress: blobs } : {}),
      });
      await dst.commit();
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
  state.tags[key] = digest;
  // Saved after every image, so a run killed midway resumes where it stopped.
  await saveState(ctx, state);
  (moved ? summary.moved : summary.copied).push(what);
  opts.progress?.imageDone?.(source, planned.action);
  ctx.deps.log.info(
    { job: ctx.name, image, tag: w.tag, digest, destination: what },
    `sync ${ctx.name}: ${moved ? 'followed a moved tag' : 'copied'} ${image}:${w.tag ?? w.digest}`,
  );
}
