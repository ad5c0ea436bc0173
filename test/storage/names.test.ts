import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, testStorage } from '../helpers/registry.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { InvalidNameError } from '../../src/storage/errors.js';
import { toOciError } from '../../src/registry/errors.js';
import type { Digest } from '../../src/oci/digest.js';
import type { RepositoryName } from '../../src/oci/name.js';

const TRAVERSAL_TAG = '../../../../../team/app/_manifests/tags/v1';
const BAD_NAMES = [
  '../team/app',
  'team/../app',
  '/team/app',
  'Team/App',
  'team//app',
  'a'.repeat(256),
  'team/app\n',
  '',
];
const BAD_TAGS = [TRAVERSAL_TAG, 'a/b', 'a'.repeat(200), '..', '.hidden', '-x', '', 'v1\0', 'é'];
const BAD_DIGESTS = [
  'sha256:../../../../x',
  'sha256:ABC',
  'md5:0123456789abcdef0123456789abcdef',
  `sha256:${'0'.repeat(63)}`,
  'sha256/../x',
];

/** Asserts that `fn` rejects with InvalidNameError of `kind`. */
async function refuses(
  fn: () => Promise<unknown> | unknown,
  kind: InvalidNameError['kind'],
  what: string,
): Promise<void> {
  await assert.rejects(
    async () => fn(),
    (e: unknown) => e instanceof InvalidNameError && e.kind === kind,
    `${what} is refused as an invalid ${kind}`,
  );
}

test(`the storage layer refuses invalid repository names, tags and digests and writes nothing (${testStorage})`, async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const img = await makeImage({ label: 'storage-names' });
  await pushImage(reg.url, 'team/app', 'v1', img);
  const before = await reg.files();
  const repo = reg.ctx.repo('team/app' as RepositoryName);
  for (const name of BAD_NAMES) {
    await refuses(() => reg.ctx.repo(name as RepositoryName), 'repository name', JSON.stringify(name));
    await refuses(() => reg.ctx.uploads.start(name as RepositoryName), 'repository name', JSON.stringify(name));
  }
  for (const tag of BAD_TAGS) {
    await refuses(() => repo.tag(tag, img.digest), 'tag', JSON.stringify(tag));
    await refuses(() => repo.createTag(tag, img.digest), 'tag', JSON.stringify(tag));
    await refuses(() => repo.resolveTag(tag), 'tag', JSON.stringify(tag));
    await refuses(() => repo.untag(tag), 'tag', JSON.stringify(tag));
  }
  for (const d of BAD_DIGESTS) {
    await refuses(() => repo.linkBlob(d as Digest), 'digest', d);
    await refuses(() => repo.tag('v2', d as Digest), 'digest', d);
    await refuses(() => repo.putManifest(Buffer.from('{}'), d as Digest), 'digest', d);
    await refuses(() => repo.hasManifest(d as Digest), 'digest', d);
    await refuses(() => reg.ctx.blobs.read(d as Digest), 'digest', d);
  }
  assert.deepEqual(await reg.files(), before);
  assert.equal(await repo.resolveTag('v1'), img.digest);
});

test('the registry answers the spec code for each kind of invalid name the storage layer refuses', () => {
  assert.equal(toOciError(new InvalidNameError('repository name', '../x')).code, 'NAME_INVALID');
  assert.equal(toOciError(new InvalidNameError('tag', '../x')).code, 'TAG_INVALID');
  assert.equal(toOciError(new InvalidNameError('digest', 'sha256:../x')).code, 'DIGEST_INVALID');
  assert.equal(toOciError(new InvalidNameError('upload id', '../x')).code, 'BLOB_UPLOAD_UNKNOWN');
  assert.equal(toOciError(new InvalidNameError('tag', 'x'.repeat(5000))).message.length < 200, true);
});

test('a tag path is built only from a tag, one folder under the repository tags, for any text', async () => {
  const fc = (await import('fast-check')).default;
  const { tagPath, tagsPath, repoPath, repositoriesRoot } = await import('../../src/storage/layout.js');
  const text = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.string({ unit: fc.constantFrom('a', '.', '..', '/', '-', '_', 'A', '\0', 'é'), maxLength: 20 }),
  );
  fc.assert(
    fc.property(text, text, (name, tag) => {
      let path: string;
      try {
        path = tagPath(name as RepositoryName, tag);
      } catch (e) {
        return e instanceof InvalidNameError;
      }
      const segments = path.split('/');
      return (
        path === `${tagsPath(name as RepositoryName)}/${tag}` &&
        repoPath(name) === `${repositoriesRoot}/${name}` &&
        !segments.includes('..') &&
        !segments.includes('.') &&
        !segments.includes('') &&
        !tag.includes('/') &&
        !name.split('/').some((c) => c.startsWith('_'))
      );
    }),
    { seed: 20261207, numRuns: 2000 },
  );
});
