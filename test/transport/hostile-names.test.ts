import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, makeTar, pushImage, writeOciLayout } from '../helpers/images.js';
import { assertIntact } from '../helpers/oci-http.js';
import { sluice, sluiceCopy } from '../helpers/sluice-cli.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';

const TRAVERSAL = '../../../../../team/app/_manifests/tags/v1';

/** A scratch folder removed after the test. */
async function scratch(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-hostile-names-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('sluice copy from an OCI layout whose ref.name is a traversal string: the name selects and lists nothing, the image copies under the name given', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const dir = await scratch(t);
  const mine = await makeImage({ label: 'layout-local' });
  await pushImage(reg.url, 'team/app', 'v1', mine);
  const theirs = await makeImage({ label: 'layout-hostile' });
  await writeOciLayout(join(dir, 'layout'), [
    { tag: TRAVERSAL, image: theirs },
    { tag: 'x'.repeat(5000), image: theirs },
  ]);

  const listed = await sluice(['tags', `oci:${join(dir, 'layout')}`]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.equal(listed.stdout, '');
  const picked = await sluice([
    'copy',
    `oci:${join(dir, 'layout')}:${TRAVERSAL}`,
    `docker://${reg.host}/team/other:v1`,
    '--dest-tls-verify=false',
  ]);
  assert.notEqual(picked.code, 0);
  assert.match(picked.stderr, /invalid image name "\.\.\/\.\.\//);
  await sluiceCopy(`oci:${join(dir, 'layout')}:${theirs.digest}`, `docker://${reg.host}/team/other:v1`, [
    '--dest-tls-verify=false',
  ]);
  await assertIntact(reg.url, 'team/other', 'v1', theirs);
  await assertIntact(reg.url, 'team/app', 'v1', mine);
  assert.deepEqual(await reg.ctx.repo('team/app' as never).tags(), ['v1']);
});

test('sluice copy from a docker-archive whose RepoTags are traversal strings names none of them and copies under the name given', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const dir = await scratch(t);
  const mine = await makeImage({ label: 'archive-local' });
  await pushImage(reg.url, 'team/app', 'v1', mine);
  const layer = await makeTar({ 'etc/hello': 'hello from a hostile archive\n' });
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [digestOf(layer)] },
    }),
  );
  const hex = (b: Buffer) => digestOf(b).slice('sha256:'.length);
  const tags = [TRAVERSAL, `${'a'.repeat(300)}:v1`, 'a/b:../../c'];
  const file = join(dir, 'hostile.tar');
  await writeFile(
    file,
    await makeTar({
      'manifest.json': JSON.stringify([
        { Config: `blobs/sha256/${hex(config)}`, RepoTags: tags, Layers: [`blobs/sha256/${hex(layer)}`] },
      ]),
      [`blobs/sha256/${hex(config)}`]: config,
      [`blobs/sha256/${hex(layer)}`]: layer,
    }),
  );

  const picked = await sluice([
    'copy',
    `docker-archive:${file}:${TRAVERSAL}`,
    `docker://${reg.host}/team/other:v1`,
    '--dest-tls-verify=false',
  ]);
  assert.notEqual(picked.code, 0);
  assert.doesNotMatch(picked.stderr, /a{100}/, 'no hostile name is echoed whole');
  const copied = await sluiceCopy(`docker-archive:${file}`, `docker://${reg.host}/team/other:v1`, [
    '--dest-tls-verify=false',
  ]);
  const got = await fetch(`${reg.url}/v2/team/other/manifests/v1`, {
    headers: { accept: `${MediaType.DockerManifest}, ${MediaType.OciManifest}` },
  });
  assert.equal(got.status, 200);
  assert.equal(got.headers.get('docker-content-digest'), copied.digest);
  await assertIntact(reg.url, 'team/app', 'v1', mine);
  assert.deepEqual(await reg.ctx.repo('team/app' as never).tags(), ['v1']);
});
