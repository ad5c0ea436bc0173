import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { makeImage, pushBlob, pushImage } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';
import { sluice } from '../helpers/sluice-cli.js';
import { gcConfigFor } from '../helpers/gc.js';

test('sluice gc -d prints the plan with a reason per object and changes nothing', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const orphan = await pushBlob(reg.url, 'app', Buffer.from('cli orphan'));
  const before = await reg.files();
  const r = await sluice(['gc', '-d', await gcConfigFor(reg)]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    new RegExp(
      `blob ${orphan}: unused: recorded now, deleted by a pass after the grace \\(no live manifest refers to it\\)`,
    ),
  );
  assert.deepEqual(await reg.files(), before);
});

test('sluice gc --grace 0 -m deletes an overwritten image at once and leaves the tagged one whole', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const a = await makeImage({ label: 'cli a' });
  const b = await makeImage({ label: 'cli b' });
  await pushImage(reg.url, 'app', 'latest', a);
  await pushImage(reg.url, 'app', 'latest', b);
  const r = await sluice(['gc', '--grace', '0s', '-m', '-c', await gcConfigFor(reg)]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`manifest app@${a.digest}: deleted`));
  assert.match(r.stderr, /garbage collection deleted an object: \{"gc":"delete","kind":"blob"/);
  assert.equal((await fetch(`${reg.url}/v2/app/blobs/${a.layers[0]!.descriptor.digest}`)).status, 404);
  for (const blob of [b.config, ...b.layers])
    assert.equal((await fetch(`${reg.url}/v2/app/blobs/${blob.descriptor.digest}`)).status, 200);
});

test('sluice gc refuses to sweep a read-only storage', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const file = await gcConfigFor(reg);
  const cfg = JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile(file, 'utf8'))) as Record<
    string,
    Record<string, unknown>
  >;
  cfg['storage']!['maintenance'] = { readonly: { enabled: true } };
  await writeFile(file, JSON.stringify(cfg));
  const r = await sluice(['gc', file]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /read-only/);
});
