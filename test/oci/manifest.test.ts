import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManifestError, effectiveArtifactType, parseManifest } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { formatPlatform, parsePlatform, platformMatches } from '../../src/oci/platform.js';

const D = (c: string) => 'sha256:' + c.repeat(64);
const desc = (mediaType: string, c: string, size = 2) => ({ mediaType, digest: D(c), size });
const enc = (o: unknown) => Buffer.from(JSON.stringify(o));

test('image manifests, indexes and artifacts parse', () => {
  const m = parseManifest(
    enc({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: desc(MediaType.OciConfig, 'a'),
      layers: [desc(MediaType.OciLayerGzip, 'b')],
    }),
  );
  assert.equal(m.kind, 'image');
  assert.equal(m.kind === 'image' && m.layers.length, 1);
  // umoci writes manifests without mediaType: the shape decides.
  const noType = parseManifest(enc({ schemaVersion: 2, config: desc(MediaType.OciConfig, 'a'), layers: [] }));
  assert.equal(noType.mediaType, MediaType.OciManifest);
  const idx = parseManifest(
    enc({
      schemaVersion: 2,
      manifests: [{ ...desc(MediaType.OciManifest, 'c'), platform: { os: 'linux', architecture: 'arm64' } }],
    }),
  );
  assert.equal(idx.kind, 'index');
  assert.equal(idx.mediaType, MediaType.OciIndex);
  const art = parseManifest(
    enc({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      artifactType: 'application/x.sbom',
      config: desc(MediaType.OciEmpty, 'a'),
      layers: [],
      subject: desc(MediaType.OciManifest, 'd'),
    }),
  );
  assert.equal(effectiveArtifactType(art), 'application/x.sbom');
  assert.equal(art.subject?.digest, D('d'));
  const docker = parseManifest(enc({ schemaVersion: 2, mediaType: MediaType.DockerManifestList, manifests: [] }));
  assert.equal(docker.kind, 'index');
});

test('invalid manifests are refused with a reason', () => {
  const cases: [unknown, RegExp][] = [
    [null, /object/],
    [[], /object/],
    [{ schemaVersion: 1 }, /schema 1|schemaVersion/],
    [{ schemaVersion: 2, mediaType: MediaType.OciManifest, layers: [] }, /config/],
    [
      {
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: 'x', digest: 'sha256:nope', size: 1 },
        layers: [],
      },
      /digest/,
    ],
    [{ schemaVersion: 2, mediaType: MediaType.OciManifest, config: desc('x', 'a', -1), layers: [] }, /size/],
    [{ schemaVersion: 2, mediaType: MediaType.OciIndex }, /manifests/],
    [{ schemaVersion: 2, mediaType: 'text/plain', config: desc('x', 'a'), layers: [] }, /unsupported/],
  ];
  for (const [doc, re] of cases)
    assert.throws(
      () => parseManifest(enc(doc)),
      (e: unknown) => e instanceof ManifestError && re.test(e.message),
      JSON.stringify(doc),
    );
  assert.throws(() => parseManifest(Buffer.from('{not json')), /JSON/);
  assert.throws(
    () => parseManifest(enc({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }), MediaType.OciManifest),
    /does not match/,
  );
});

test('platforms parse, format and match like containerd', () => {
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.equal(formatPlatform({ os: 'linux', architecture: 'amd64' }), 'linux/amd64');
  assert.throws(() => parsePlatform('linux'));
  assert.ok(platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' }));
  assert.ok(platformMatches(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' }));
  assert.ok(!platformMatches(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v6' }));
  assert.ok(!platformMatches(parsePlatform('linux/amd64'), { os: 'windows', architecture: 'amd64' }));
});
