import assert from 'node:assert/strict';
import { test } from 'node:test';
import { digestOf, type Digest } from '../../src/oci/digest.js';
import type { RepositoryName } from '../../src/oci/name.js';
import type { ManifestFacts, RepositoryFacts, StorageFacts, UnreadableManifest } from '../../src/gc/facts.js';
import { artifactTagSubject, planCollection } from '../../src/gc/plan.js';

const d = (s: string): Digest => digestOf(s);
const [cfg, layer, shared, orphan, image, old, index, child, sig, sigTarget, referrer] = [
  'cfg',
  'layer',
  'shared',
  'orphan',
  'image',
  'old',
  'index',
  'child',
  'sig',
  'sigTarget',
  'referrer',
].map(d) as Digest[] as [Digest, Digest, Digest, Digest, Digest, Digest, Digest, Digest, Digest, Digest, Digest];

function facts(
  repo: Partial<RepositoryFacts>,
  manifests: [Digest, ManifestFacts | UnreadableManifest][],
  blobs: Digest[],
): StorageFacts {
  const r: RepositoryFacts = {
    name: 'app' as RepositoryName,
    tags: new Map(),
    revisions: manifests.map(([x]) => x),
    layers: [],
    ...repo,
  };
  return { repositories: [r], blobs: new Set(blobs), manifests: new Map(manifests) };
}

const world = (): StorageFacts =>
  facts(
    {
      tags: new Map([
        ['v1', index],
        [`${image.replace(':', '-')}.sig`, sigTarget],
      ]),
      layers: [layer, orphan],
    },
    [
      [index, { children: [image], blobs: [] }],
      [image, { children: [], blobs: [cfg, layer, shared] }],
      [old, { children: [], blobs: [cfg, shared, d('old-layer')] }],
      [sigTarget, { children: [], blobs: [sig] }],
      [referrer, { children: [], blobs: [cfg], subject: child }],
    ],
    [cfg, layer, shared, orphan, image, old, index, sigTarget, sig, referrer, d('old-layer')],
  );

test('planCollection() keeps blobs of every manifest and marks a blob no manifest names', () => {
  const plan = planCollection(world(), { deleteUntagged: false });
  for (const b of [cfg, layer, shared, image, old, index, sig, d('old-layer')]) assert.ok(plan.live.has(b), b);
  const blobs = plan.garbage.filter((g) => g.kind === 'blob').map((g) => g.digest);
  assert.deepEqual(blobs.sort(), [orphan, referrer].sort());
  assert.ok(plan.garbage.some((g) => g.kind === 'layer-link' && g.digest === orphan));
});

test('planCollection() collects a referrer whose subject is gone, with the reason', () => {
  const plan = planCollection(world(), { deleteUntagged: false });
  const g = plan.garbage.find((x) => x.kind === 'manifest' && x.digest === referrer);
  assert.equal(g?.reason, `referrer of ${child}, which is gone`);
});

test('planCollection() with deleteUntagged collects an untagged manifest and its blobs, and keeps index children and signatures', () => {
  const plan = planCollection(world(), { deleteUntagged: true });
  const garbage = new Set(plan.garbage.map((g) => `${g.kind} ${g.digest}`));
  assert.ok(garbage.has(`manifest ${old}`));
  assert.ok(garbage.has(`blob ${d('old-layer')}`));
  for (const live of [image, index, sigTarget, sig, shared]) assert.ok(plan.live.has(live), live);
});

test('planCollection() with deleteUntagged collects a signature tag whose subject is gone', () => {
  const f = world();
  f.repositories[0]!.tags.delete('v1');
  const plan = planCollection(f, { deleteUntagged: true });
  const tag = plan.garbage.find((g) => g.kind === 'tag');
  assert.equal(tag?.digest, sigTarget);
  assert.match(tag!.reason, /artifact tag of sha256:/);
});

test('planCollection() is blocked when a live manifest cannot be read', () => {
  const f = facts({ tags: new Map([['v1', image]]) }, [[image, { unreadable: 'not json' }]], [image, orphan]);
  const plan = planCollection(f, { deleteUntagged: false });
  assert.match(plan.blocked ?? '', /cannot be read \(not json\)/);
});

test('artifactTagSubject() reads cosign tags and leaves ordinary tags alone', () => {
  assert.equal(artifactTagSubject(`${image.replace(':', '-')}.att`), image);
  assert.equal(artifactTagSubject('v1.2'), null);
  assert.equal(artifactTagSubject('sha256-abc.sig'), null);
});
