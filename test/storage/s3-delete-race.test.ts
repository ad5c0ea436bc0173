import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { startS3Node, type S3Node } from '../helpers/s3-nodes.js';
import { scratch } from '../helpers/clients.js';
import { S3Driver, type S3Options } from '../../src/storage/s3.js';
import { BlobStore } from '../../src/storage/blobs.js';
import { RepositoryStore } from '../../src/storage/repository.js';
import type { RepositoryName } from '../../src/oci/name.js';
import { revisionLinkPath, tagPath } from '../../src/storage/layout.js';
import { makeImage, pushImage, pushManifest, type TestImage } from '../helpers/images.js';

let s3: TestS3;
let work: { dir: string; cleanup: () => Promise<void> };
const nodes: S3Node[] = [];

before(async () => {
  s3 = await startS3('reg');
  work = await scratch('sluice-s3-delete-race-');
});

after(async () => {
  for (const n of nodes) await n.stop();
  await s3.close();
  await work.cleanup();
});

/** What one node says of a tag and its manifest: the tag's HEAD, the digest's HEAD, and whether tags/list names the tag. */
async function viewOn(node: S3Node, repo: string, tag: string, img: TestImage): Promise<string> {
  const head = (ref: string) =>
    fetch(`${node.url}/v2/${repo}/manifests/${ref}`, { method: 'HEAD', headers: { accept: img.mediaType } }).then(
      (r) => r.status,
    );
  const list = (await (await fetch(`${node.url}/v2/${repo}/tags/list`)).json()) as { tags?: string[] };
  return `tag ${await head(tag)}, digest ${await head(img.digest)}, listed ${(list.tags ?? []).includes(tag)}`;
}

test('a DELETE of a manifest on one node racing a PUT of it under a new tag on another ends as one of the two orders: never a listed tag without its manifest', async (t) => {
  const one = await startS3Node(s3, work.dir, { key: 'NODE1', root: 'delrace' });
  nodes.push(one);
  const two = await startS3Node(s3, work.dir, { key: 'NODE2', root: 'delrace' });
  nodes.push(two);
  // The two serial outcomes: PUT then DELETE (both gone), or DELETE then PUT (both there).
  const gone = 'tag 404, digest 404, listed false';
  const there = 'tag 200, digest 200, listed true';
  const seen = { gone: 0, there: 0 };
  for (let round = 0; round < 15; round++) {
    const img = await makeImage({ label: `delrace-${round}` });
    await pushImage(one.url, 'app', `old-${round}`, img);
    const tag = `new-${round}`;
    const [del, put] = await Promise.all([
      fetch(`${one.url}/v2/app/manifests/${img.digest}`, { method: 'DELETE' }),
      pushManifest(two.url, 'app', tag, img.manifest, img.mediaType),
    ]);
    assert.equal(del.status, 202, `round ${round}: DELETE answered ${del.status}`);
    assert.equal(put.status, 201, `round ${round}: PUT answered ${put.status} ${await put.text()}`);
    const onOne = await viewOn(one, 'app', tag, img);
    const onTwo = await viewOn(two, 'app', tag, img);
    assert.equal(onOne, onTwo, `round ${round}: the nodes disagree`);
    assert.ok(onOne === gone || onOne === there, `round ${round}: ${onOne}`);
    seen[onOne === gone ? 'gone' : 'there']++;
    // The delete took the old tag either way.
    assert.equal(
      (await fetch(`${two.url}/v2/app/manifests/old-${round}`, { method: 'HEAD', headers: { accept: img.mediaType } }))
        .status,
      404,
    );
  }
  t.diagnostic(`PUT then DELETE: ${seen.gone} rounds; DELETE then PUT: ${seen.there} rounds`);
});

test("RepositoryStore.keepRevision() writes back a revision deleted under a push's tag, and leaves it gone when the delete took the tag too", async (t) => {
  const driver = new S3Driver(s3.config('keep') as unknown as S3Options);
  t.after(() => driver.destroy());
  const app = 'app' as RepositoryName;
  const repo = new RepositoryStore(driver, new BlobStore(driver), app);
  const img = await makeImage({ label: 'keep' });
  const d = await repo.putManifest(img.manifest);
  await repo.tag('v1', d);
  // A delete that listed the tags before the push wrote v1 removed only the revision: the push wins.
  await driver.delete(revisionLinkPath(app, d).replace(/\/link$/, ''));
  await repo.keepRevision(d, ['v1']);
  assert.equal((await repo.getManifest('v1'))?.digest, d);
  // A delete that saw v1 removed it and the revision: it came last, and nothing is written back.
  await driver.delete(tagPath(app, 'v1'));
  await driver.delete(revisionLinkPath(app, d).replace(/\/link$/, ''));
  await repo.keepRevision(d, ['v1']);
  assert.equal(await repo.hasManifest(d), false);
  assert.deepEqual(await repo.tags(), []);
});
