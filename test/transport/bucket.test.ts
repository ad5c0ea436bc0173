import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { makeMultiArch, pushImage } from '../helpers/images.js';
import { assertIntact } from '../helpers/oci-http.js';
import { startRegistry } from '../helpers/registry.js';
import { startS3 } from '../helpers/s3.js';
import { sluice, sluiceCopy } from '../helpers/sluice-cli.js';
import { BucketFiles } from '../../src/transport/bucket-files.js';
import { parseBucketReference } from '../../src/transport/bucket.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

test('a multi-arch image goes registry → OCI layout in a bucket → registry with every digest kept', async (t) => {
  const s3 = await startS3();
  t.after(() => s3.close());
  const reg = await startRegistry();
  t.after(() => reg.close());
  const idx = await makeMultiArch('bucket');
  await pushImage(reg.url, 'team/app', 'v1', idx);
  const flags = ['--all', '--s3-endpoint', s3.endpoint];

  const out = await sluiceCopy(`docker://${reg.host}/team/app:v1`, `s3:${s3.bucket}/layouts/app:v1`, [
    ...flags,
    '--dest-creds',
    'S3RVER:S3RVER',
  ]);
  assert.equal(out.digest, idx.digest);
  assert.equal(out.manifests.length, 4);

  // The bucket holds a plain OCI layout under the prefix: oci-layout, index.json naming the index, every blob by digest.
  const keys = (await s3.keys('layouts/app/')).sort();
  const blobs = [
    idx.manifest,
    ...idx.images.flatMap((i) => [i.manifest, i.config.bytes, ...i.layers.map((l) => l.bytes)]),
  ];
  const expected = [
    idx.digest,
    ...idx.images.flatMap((i) => [i.digest, i.config.descriptor.digest, ...i.layers.map((l) => l.descriptor.digest)]),
  ];
  assert.deepEqual(
    keys,
    [
      'layouts/app/index.json',
      'layouts/app/oci-layout',
      ...[...new Set(expected)].map((d) => `layouts/app/blobs/sha256/${d.slice(7)}`),
    ].sort(),
  );
  const files = new BucketFiles(s3.bucket, 'layouts/app', {
    endpoint: s3.endpoint,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
  });
  t.after(() => files.close());
  const index = JSON.parse((await files.read('index.json'))!.toString()) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  assert.deepEqual(
    index.manifests.map((m) => [m.digest, m.annotations?.[REF_NAME]]),
    [[idx.digest, 'v1']],
  );
  for (const [i, d] of expected.entries())
    assert.deepEqual(await files.read(`blobs/sha256/${d.slice(7)}`), blobs[i], `bucket object of ${d}`);

  // A bucket that allows anonymous GETs is a static web server too: oci-http: reads the same layout (s3rver checks no signatures).
  const web = await sluiceCopy(
    `oci-http:${s3.endpoint}/${s3.bucket}/layouts/app:v1`,
    `docker://${reg.host}/web/app:v1`,
    ['--all'],
  );
  assert.equal(web.digest, idx.digest);
  await assertIntact(reg.url, 'web/app', 'v1', idx);

  // Again: every blob is found in the bucket and nothing is sent.
  const again = await sluiceCopy(`docker://${reg.host}/team/app:v1`, `s3:${s3.bucket}/layouts/app:v1`, [
    ...flags,
    '--dest-creds',
    'S3RVER:S3RVER',
  ]);
  assert.equal(again.bytesSent, 0);

  // Back into a registry, keys and endpoint from the AWS environment variables this time.
  const env = {
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_REGION: 'us-east-1',
  };
  const back = await sluiceCopy(`s3:${s3.bucket}/layouts/app:v1`, `docker://${reg.host}/back/app:v1`, ['--all'], env);
  assert.equal(back.digest, idx.digest);
  assert.equal(back.sourceDigest, idx.digest);
  await assertIntact(reg.url, 'back/app', 'v1', idx);

  // inspect and tags read the bucket layout too.
  const tags = await sluice(['tags', '--s3-endpoint', s3.endpoint, `s3:${s3.bucket}/layouts/app`], env);
  assert.equal(tags.code, 0, tags.stderr);
  assert.equal(tags.stdout, 'v1\n');
  const missing = await sluice(
    ['copy', '--all', `s3:${s3.bucket}/layouts/app:v2`, `docker://${reg.host}/back/app:v2`],
    env,
  );
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /no image named "v2"/);
});

test('a blob stream that fails or runs short leaves no object in the bucket', async (t) => {
  const s3 = await startS3();
  t.after(() => s3.close());
  const files = new BucketFiles(s3.bucket, 'l', {
    endpoint: s3.endpoint,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
  });
  t.after(() => files.close());
  const big = 20 << 20;
  // Fails after two multipart parts have been sent.
  async function* failing(): AsyncGenerator<Buffer> {
    for (let sent = 0; sent < 18 << 20; sent += 1 << 20) yield randomBytes(1 << 20);
    throw new Error('connection lost');
  }
  await assert.rejects(files.writeStream('blobs/sha256/aa', Readable.from(failing()), big), /connection lost/);
  assert.equal(await files.size('blobs/sha256/aa'), undefined);
  // Short by a byte, large (multipart) and small (one PutObject).
  await assert.rejects(
    files.writeStream('blobs/sha256/bb', Readable.from([randomBytes(big - 1)]), big),
    /expected 20971520/,
  );
  await assert.rejects(
    files.writeStream('blobs/sha256/cc', Readable.from([randomBytes(99)]), 100),
    /got 99 bytes, expected 100/,
  );
  assert.equal(await files.size('blobs/sha256/bb'), undefined);
  assert.equal(await files.size('blobs/sha256/cc'), undefined);
  assert.deepEqual(await s3.keys('l/'), []);
  // And a whole one appears with its bytes.
  const bytes = randomBytes(big);
  await files.writeStream('blobs/sha256/dd', Readable.from([bytes.subarray(0, 7 << 20), bytes.subarray(7 << 20)]), big);
  assert.deepEqual(await files.read('blobs/sha256/dd'), bytes);
});

test('s3: references name a bucket, a prefix and a tag', () => {
  assert.deepEqual(parseBucketReference('images/team/app:v1'), { bucket: 'images', prefix: 'team/app', ref: 'v1' });
  assert.deepEqual(parseBucketReference('images'), { bucket: 'images', prefix: '' });
  assert.deepEqual(parseBucketReference('images/app/:sha256:' + 'a'.repeat(64)), {
    bucket: 'images',
    prefix: 'app',
    ref: 'sha256:' + 'a'.repeat(64),
  });
  assert.throws(() => parseBucketReference('Not_A_Bucket/x'), /not a bucket name/);
});
