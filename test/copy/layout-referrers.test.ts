import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestTag } from '../../src/oci/digest.js';
import { makeImage, makeMultiArch, pushImage, type TestImage, type TestIndex } from '../helpers/images.js';
import { assertIntact, makeArtifact } from '../helpers/oci-http.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { scratch } from '../helpers/clients.js';
import { sluice, sluiceCopy } from '../helpers/sluice-cli.js';
import { needTools, runOk } from '../helpers/tools.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

interface Signed {
  idx: TestIndex;
  sbom: TestImage;
  childSig: TestImage;
  sig: TestImage;
  sigTag: string;
}

/** A multi-arch image with an SBOM referrer on the index, a referrer on one child and a cosign .sig tag. */
async function pushSigned(reg: TestRegistry, repo: string): Promise<Signed> {
  const idx = await makeMultiArch(`layout-ref-${repo}`);
  await pushImage(reg.url, repo, 'v1', idx);
  const subject = { mediaType: idx.mediaType, digest: idx.digest, size: idx.manifest.length };
  const sbom = makeArtifact({
    artifactType: 'application/spdx+json',
    payload: `{"sbom":"${repo}"}`,
    subject,
    annotations: { 'org.example.kind': 'sbom' },
  });
  await pushImage(reg.url, repo, sbom.digest, sbom);
  const child = idx.images[0]!;
  const childSig = makeArtifact({
    artifactType: 'application/vnd.example.signature',
    payload: `{"signed":"${child.digest}"}`,
    subject: { mediaType: child.mediaType, digest: child.digest, size: child.manifest.length },
  });
  await pushImage(reg.url, repo, childSig.digest, childSig);
  const sig = makeArtifact({
    artifactType: 'application/vnd.dev.cosign.simplesigning.v1+json',
    payload: `{"critical":"${repo}"}`,
  });
  const sigTag = `${digestTag(idx.digest)}.sig`;
  await pushImage(reg.url, repo, sigTag, sig);
  return { idx, sbom, childSig, sig, sigTag };
}

async function referrers(url: string, repo: string, digest: string): Promise<string[]> {
  const r = await fetch(`${url}/v2/${repo}/referrers/${digest}`);
  assert.equal(r.status, 200);
  return ((await r.json()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest).sort();
}

/** What arrived at the far registry must be what left the first one: image, referrers, cosign tag. */
async function assertSignedCopy(reg: TestRegistry, repo: string, s: Signed): Promise<void> {
  await assertIntact(reg.url, repo, 'v1', s.idx);
  await assertIntact(reg.url, repo, s.sbom.digest, s.sbom);
  await assertIntact(reg.url, repo, s.childSig.digest, s.childSig);
  await assertIntact(reg.url, repo, s.sigTag, s.sig);
  assert.deepEqual(await referrers(reg.url, repo, s.idx.digest), [s.sbom.digest]);
  assert.deepEqual(await referrers(reg.url, repo, s.idx.images[0]!.digest), [s.childSig.digest]);
}

test('--with-referrers through oci: keeps referrers: listed in index.json, read back by their subject', async () => {
  const a = await startRegistry();
  const b = await startRegistry();
  const s = await scratch();
  try {
    const signed = await pushSigned(a, 'app');
    const dir = join(s.dir, 'layout');
    await sluiceCopy(`docker://${a.host}/app:v1`, `oci:${dir}:v1`, ['--all', '--with-referrers']);

    // The layout lists each referrer as the referrers API would (no name), the cosign tag by its name.
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as {
      manifests: { digest: string; artifactType?: string; annotations?: Record<string, string> }[];
    };
    const entry = (d: string) => index.manifests.filter((m) => m.digest === d);
    assert.equal(entry(signed.idx.digest)[0]?.annotations?.[REF_NAME], 'v1');
    assert.equal(entry(signed.sbom.digest).length, 1);
    assert.equal(entry(signed.sbom.digest)[0]!.artifactType, 'application/spdx+json');
    assert.equal(entry(signed.sbom.digest)[0]!.annotations?.[REF_NAME], undefined);
    assert.equal(entry(signed.sbom.digest)[0]!.annotations?.['org.example.kind'], 'sbom');
    assert.equal(entry(signed.childSig.digest).length, 1);
    assert.equal(entry(signed.sig.digest)[0]?.annotations?.[REF_NAME], signed.sigTag);

    // Copying into the same layout again lists nothing twice.
    await sluiceCopy(`docker://${a.host}/app:v1`, `oci:${dir}:v1`, ['--all', '--with-referrers']);
    const again = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: unknown[] };
    assert.equal(again.manifests.length, index.manifests.length);

    await sluiceCopy(`oci:${dir}:v1`, `docker://${b.host}/app:v1`, ['--all', '--with-referrers']);
    await assertSignedCopy(b, 'app', signed);
  } finally {
    await s.cleanup();
    await a.close();
    await b.close();
  }
});

test('--with-referrers through oci-archive: and an unnamed oci: layout keeps referrers too', async () => {
  const a = await startRegistry();
  const b = await startRegistry();
  const s = await scratch();
  try {
    const signed = await pushSigned(a, 'arch');
    const file = join(s.dir, 'signed.tar');
    await sluiceCopy(`docker://${a.host}/arch:v1`, `oci-archive:${file}:v1`, ['--all', '--with-referrers']);
    await sluiceCopy(`oci-archive:${file}:v1`, `docker://${b.host}/arch:v1`, ['--all', '--with-referrers']);
    await assertSignedCopy(b, 'arch', signed);

    // No name for the image: the layout still holds one image, its referrers listed beside it do not count.
    const dir = join(s.dir, 'unnamed');
    await sluiceCopy(`docker://${a.host}/arch:v1`, `oci:${dir}`, ['--all', '--with-referrers']);
    await sluiceCopy(`oci:${dir}`, `docker://${b.host}/unnamed:v1`, ['--all', '--with-referrers']);
    await assertSignedCopy(b, 'unnamed', signed);
  } finally {
    await s.cleanup();
    await a.close();
    await b.close();
  }
});

test('skopeo still reads a layout that lists referrers beside the image', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const a = await startRegistry();
  const s = await scratch();
  try {
    const signed = await pushSigned(a, 'sk');
    const dir = join(s.dir, 'layout');
    await sluiceCopy(`docker://${a.host}/sk:v1`, `oci:${dir}:v1`, ['--all', '--with-referrers']);
    const raw = await runOk('skopeo', ['inspect', '--raw', `oci:${dir}:v1`]);
    assert.equal(raw.stdout, signed.idx.manifest.toString());
    await runOk('skopeo', ['copy', '--all', `oci:${dir}:v1`, `oci:${join(s.dir, 'out')}:v1`]);
  } finally {
    await s.cleanup();
    await a.close();
  }
});

test('--with-referrers into a docker-archive: skips what an archive cannot hold, with a warning', async () => {
  const a = await startRegistry();
  const s = await scratch();
  try {
    const img = await makeImage({ label: 'archive-referrers' });
    await pushImage(a.url, 'one', 'v1', img);
    const sbom = makeArtifact({
      artifactType: 'application/spdx+json',
      payload: '{"sbom":"one"}',
      subject: { mediaType: img.mediaType, digest: img.digest, size: img.manifest.length },
    });
    await pushImage(a.url, 'one', sbom.digest, sbom);
    const sig = makeArtifact({
      artifactType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      payload: '{"critical":"one"}',
    });
    const sigTag = `${digestTag(img.digest)}.sig`;
    await pushImage(a.url, 'one', sigTag, sig);

    const file = join(s.dir, 'one.tar');
    const sum = await sluiceCopy(`docker://${a.host}/one:v1`, `docker-archive:${file}:one:v1`, ['--with-referrers']);
    const warning = sum.warnings.find((w) => /referrers/.test(w));
    assert.ok(warning, `warnings: ${sum.warnings.join('; ')}`);
    assert.match(warning, /skipped 2/);
    assert.ok(warning.includes(sbom.digest) && warning.includes(sigTag), warning);

    // The archive holds the image itself.
    const inspected = await sluice(['inspect', `docker-archive:${file}`]);
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.equal(
      (JSON.parse(inspected.stdout) as { Config: { digest: string } }).Config.digest,
      img.config.descriptor.digest,
    );
  } finally {
    await s.cleanup();
    await a.close();
  }
});
