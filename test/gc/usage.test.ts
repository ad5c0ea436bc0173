import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeImage, pushBlob, pushImage, type TestImage } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';
import { sluice } from '../helpers/sluice-cli.js';
import { gcConfigFor } from '../helpers/gc.js';

/** Bytes of the image's manifest, config and layers but the first. */
function ownBytes(img: TestImage): number {
  return img.manifest.length + img.config.bytes.length + img.layers.slice(1).reduce((n, l) => n + l.bytes.length, 0);
}

test('sluice du counts per repository the bytes only it uses and the bytes it shares, leaving garbage out', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const base = { 'base/big': Buffer.alloc(32 * 1024, 3) };
  const a = await makeImage({ layers: [base, { 'a.txt': 'only in one\n' }], label: 'a' });
  const b = await makeImage({ layers: [base, { 'b.txt': 'only in two, and longer\n' }], label: 'b' });
  assert.equal(a.layers[0]!.descriptor.digest, b.layers[0]!.descriptor.digest, 'the base layer is one blob');
  await pushImage(reg.url, 'one', 'v1', a);
  await pushImage(reg.url, 'two', 'v1', b);
  await pushBlob(reg.url, 'two', Buffer.from('garbage nobody names'));
  const r = await sluice(['du', '--json', await gcConfigFor(reg)]);
  assert.equal(r.code, 0, r.stderr);
  const usage = JSON.parse(r.stdout) as { repository: string; bytes: number; exclusive: number; shared: number }[];
  const shared = a.layers[0]!.bytes.length;
  assert.deepEqual(
    usage.sort((x, y) => x.repository.localeCompare(y.repository)),
    [
      { repository: 'one', bytes: ownBytes(a) + shared, exclusive: ownBytes(a), shared },
      { repository: 'two', bytes: ownBytes(b) + shared, exclusive: ownBytes(b), shared },
    ],
  );
});

test('a registry collecting on a schedule exports the bytes per repository as sluice_repository_bytes', async (t) => {
  const reg = await startRegistry({ storage: { gc: { enabled: true, interval: '1s', grace: '1h', collector: true } } });
  t.after(() => reg.close());
  const img = await makeImage({ label: 'measured' });
  await pushImage(reg.url, 'app', 'v1', img);
  const total = img.manifest.length + img.config.bytes.length + img.layers.reduce((n, l) => n + l.bytes.length, 0);
  const sample = async (): Promise<string | undefined> => (await (await fetch(`${reg.url}/metrics`)).text()).split('\n').find((l) => l.startsWith('sluice_repository_bytes{') && l.includes('repository="app"') && l.includes('kind="exclusive"'));
  // Passes run every second; wait (generously) for one after the push.
  for (const until = Date.now() + 60_000; Number((await sample())?.split(' ').pop()) !== total && Date.now() < until; ) await new Promise((r) => setTimeout(r, 250));
  assert.equal(Number((await sample())?.split(' ').pop()), total, await sample());
});
