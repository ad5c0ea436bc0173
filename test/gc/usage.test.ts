import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeImage, makeMultiArch, pushBlob, pushImage, type TestImage } from '../helpers/images.js';
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
  const sample = async (): Promise<string | undefined> =>
    (await (await fetch(`${reg.url}/metrics`)).text())
      .split('\n')
      .find(
        (l) =>
          l.startsWith('sluice_repository_bytes{') && l.includes('repository="app"') && l.includes('kind="exclusive"'),
      );
  // Passes run every second; wait (generously) for one after the push.
  for (const until = Date.now() + 60_000; Number((await sample())?.split(' ').pop()) !== total && Date.now() < until; )
    await new Promise((r) => setTimeout(r, 250));
  assert.equal(Number((await sample())?.split(' ').pop()), total, await sample());
});

test('sluice du REPOSITORY lists per tag the bytes it names and what deleting that one tag would free', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const base = { 'base/big': Buffer.alloc(16 * 1024, 5) };
  const a = await makeImage({ layers: [base, { 'a.txt': 'kept by two tags\n' }], label: 'tag-a' });
  const withOther = { 'bc.txt': 'shared with another repository only\n' };
  const b = await makeImage({ layers: [base, { 'b.txt': 'named by one tag only\n' }, withOther], label: 'tag-b' });
  const c = await makeImage({ layers: [base, withOther], label: 'tag-c' });
  const multi = await makeMultiArch('tag-multi');
  await pushImage(reg.url, 'app', 'v1', a);
  await pushImage(reg.url, 'app', 'v1-alias', a);
  await pushImage(reg.url, 'app', 'v2', b);
  await pushImage(reg.url, 'app', 'multi', multi);
  await pushImage(reg.url, 'other', 'v1', c);
  const sizeOf = (img: TestImage) =>
    img.manifest.length + img.config.bytes.length + img.layers.reduce((n, l) => n + l.bytes.length, 0);
  const distinct = (imgs: TestImage[]) => {
    const seen = new Map<string, number>();
    for (const i of imgs)
      for (const x of [
        { d: i.digest, n: i.manifest.length },
        { d: i.config.descriptor.digest, n: i.config.bytes.length },
        ...i.layers.map((l) => ({ d: l.descriptor.digest, n: l.bytes.length })),
      ])
        seen.set(x.d, x.n);
    return [...seen.values()].reduce((n, x) => n + x, 0);
  };
  const du = async (...extra: string[]) => {
    const r = await sluice(['du', '--json', await gcConfigFor(reg), 'app', ...extra]);
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as { tag: string; digest: string; bytes: number; frees: number }[];
    return Object.fromEntries(rows.map((x) => [x.tag, { bytes: x.bytes, frees: x.frees }]));
  };
  const all = distinct(multi.images) + multi.manifest.length;
  const bOwn = sizeOf(b) - b.layers[0]!.bytes.length - b.layers[2]!.bytes.length;
  // Without -m untagged manifests stay: deleting a tag deletes the manifest only it names, and an index's children stay.
  assert.deepEqual(await du(), {
    v1: { bytes: sizeOf(a), frees: 0 },
    'v1-alias': { bytes: sizeOf(a), frees: 0 },
    v2: { bytes: sizeOf(b), frees: bOwn },
    multi: { bytes: all, frees: multi.manifest.length },
  });
  // With -m the collector takes the children too.
  assert.deepEqual((await du('-m'))['multi'], { bytes: all, frees: all });
  const text = await sluice(['du', await gcConfigFor(reg), 'app']);
  assert.match(text.stdout, new RegExp(`^\\s+${sizeOf(b)}\\s+${bOwn}  app:v2$`, 'm'));
  const every = await sluice(['du', '--tags', '--json', '-c', await gcConfigFor(reg)]);
  assert.equal(every.code, 0, every.stderr);
  const rows = JSON.parse(every.stdout) as { repository: string; tag: string }[];
  assert.deepEqual(rows.map((x) => `${x.repository}:${x.tag}`).sort(), [
    'app:multi',
    'app:v1',
    'app:v1-alias',
    'app:v2',
    'other:v1',
  ]);
  const unknown = await sluice(['du', await gcConfigFor(reg), 'nope']);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /no tags/);
});
