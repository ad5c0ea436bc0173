import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Collector } from '../../src/gc/collector.js';
import { pushBlob, type TestImage } from './images.js';
import type { TestRegistry } from './registry.js';

const GRACE = 60_000;
/** How long the sweep waits for the writer: a writer without claims is done well within it; one with claims waits for the sweep. */
const WRITER_HEAD_START_MS = 8000;

/**
 * Leaves the image's config and layers in `repo` of `reg` as blobs no manifest names, recorded long enough
 * ago to be deleted, and runs the sweeping pass with `write` started between the plan and the first
 * deletion; resolves to what the write resolves to, once both are done.
 */
export async function sweepWhile(
  reg: TestRegistry,
  img: TestImage,
  write: () => Promise<unknown>,
  repo = 'own/orphans',
): Promise<unknown> {
  await pushBlob(reg.url, repo, img.config);
  for (const l of img.layers) await pushBlob(reg.url, repo, l);
  const collector = new Collector(reg.ctx.driver);
  let clock = Date.now();
  const pass = (beforeSweep?: () => Promise<void>) =>
    collector.collect({
      graceMs: GRACE,
      deleteUntagged: false,
      dryRun: false,
      now: () => clock,
      ...(beforeSweep ? { beforeSweep } : {}),
    });
  await pass();
  clock += GRACE + 1;
  let writing: Promise<unknown> | undefined;
  const report = await pass(async () => {
    writing = write();
    writing.catch(() => undefined);
    await Promise.race([writing, new Promise((r) => setTimeout(r, WRITER_HEAD_START_MS))]);
  });
  assert.ok(report.deletedObjects > 0, 'the pass deleted nothing: the test proved nothing');
  return await writing!;
}

/** A config file naming the registry's storage, as an operator would pass to `sluice gc` or `sluice du`. */
export async function gcConfigFor(reg: TestRegistry): Promise<string> {
  const storage =
    reg.storage === 's3' ? { s3: reg.ctx.config.storage.s3 } : { filesystem: { rootdirectory: reg.root } };
  const file = join(tmpdir(), `sluice-gc-${randomUUID()}.yml`);
  // s3rver has no conditional writes, so no lease: the test's one collector says it is the one.
  await writeFile(file, JSON.stringify({ version: 0.1, storage: { ...storage, gc: { collector: true } } }));
  return file;
}
