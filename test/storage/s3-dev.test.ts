import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { layoutDigest, scratch, skopeoCopy } from '../helpers/clients.js';
import { startSluiceProcess } from '../helpers/sluice-cli.js';
import { hasSwift } from '../helpers/swift.js';
import { clientsRequired, needTools } from '../helpers/tools.js';

const SCRIPT = fileURLToPath(new URL('../../../scripts/s3-dev.mjs', import.meta.url));
const SWIFT_MISSING =
  'OpenStack Swift is not installed (apt-get install swift swift-proxy swift-object swift-container swift-account memcached)';
if (!hasSwift() && clientsRequired) throw new Error(`SLUICE_REQUIRE_CLIENTS is set but ${SWIFT_MISSING}`);

test('scripts/s3-dev.mjs starts a local S3 whose printed storage.s3 block, pasted into a config, serves a skopeo push and pull', {
  skip: hasSwift() ? false : SWIFT_MISSING,
}, async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const work = await scratch('sluice-s3-dev-');
  t.after(() => work.cleanup());
  const dev = spawn(process.execPath, [SCRIPT, '--bucket', 'trial'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  dev.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((res) => dev.once('exit', (code) => res(code)));
  t.after(async () => {
    if (dev.exitCode === null && dev.signalCode === null) dev.kill('SIGKILL');
    await exited;
  });
  const printed: string[] = [];
  const killer = setTimeout(() => dev.kill('SIGKILL'), 120_000);
  for await (const line of createInterface({ input: dev.stdout })) {
    printed.push(line);
    if (line.startsWith('# Ctrl-C')) break;
  }
  clearTimeout(killer);
  assert.ok(
    printed.some((l) => l.startsWith('# Ctrl-C')),
    `the script printed no config:\n${printed.join('\n')}\n${stderr}`,
  );
  const dataDir = /data in (\S+)/.exec(printed[0]!)![1]!;
  // The block exactly as printed, pasted into a config file, as a user would.
  const block = printed.filter((l) => !l.startsWith('#')).join('\n');
  assert.match(block, /^storage:\n {2}s3:\n/);
  const config = join(work.dir, 'config.yml');
  await writeFile(config, `${block}\n`);
  const node = await startSluiceProcess(undefined, { config });
  t.after(() => node.stop());
  const img = await makeImage({ label: 's3-dev' });
  const layout = join(work.dir, 'in');
  await writeOciLayout(layout, [{ tag: 'v1', image: img }]);
  await skopeoCopy(`oci:${layout}:v1`, `docker://${node.host}/trial/app:v1`);
  const out = join(work.dir, 'out');
  await skopeoCopy(`docker://${node.host}/trial/app:v1`, `oci:${out}:v1`);
  assert.equal(await layoutDigest(out, 'v1'), img.digest);
  // Ctrl-C stops every server and removes the temporary data.
  dev.kill('SIGINT');
  assert.equal(await exited, 0);
  assert.equal(existsSync(dataDir), false);
});
