import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startS3, type TestS3 } from '../helpers/s3.js';

// The S3 tests are only as good as their server: s3rver 3.7.1 as published answered a PutObject before its
// bytes were in the file, wrote the file in place (a reader saw it truncated while another PUT of the key
// ran) and removed emptied folders under a concurrent PUT. test/helpers/s3rver-atomic.ts makes its writes
// what S3 promises; these tests hold it to that.

let s3: TestS3;
let c: S3Client;

before(async () => {
  s3 = await startS3('atomic');
  c = new S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
});

after(async () => {
  c.destroy();
  await s3.close();
});

const put = (Key: string, Body: Buffer) =>
  c.send(new PutObjectCommand({ Bucket: s3.bucket, Key, Body, ContentLength: Body.length }));
const get = async (Key: string) =>
  Buffer.from(await (await c.send(new GetObjectCommand({ Bucket: s3.bucket, Key }))).Body!.transformToByteArray());

test('the test S3 server: after concurrent PutObjects of one key, readers during and after see one of them whole', async () => {
  let before: Buffer | null = null;
  for (let round = 0; round < 10; round++) {
    const bodies = [randomBytes(300_000), randomBytes(500_000), randomBytes(71)];
    const during: Promise<Buffer | null>[] = [];
    const puts = bodies.map((b) => put(`conc/obj`, b));
    for (let i = 0; i < 3; i++) during.push(get('conc/obj').catch(() => null));
    await Promise.all(puts);
    // A read during the PUTs may still see the object the round began with.
    const whole = (b: Buffer | null) => b === null || [...bodies, before].some((x) => x?.equals(b));
    for (const b of await Promise.all(during))
      assert.ok(whole(b), `round ${round}: a read during the PUTs saw ${b?.length} bytes of none of them`);
    const last = await get('conc/obj');
    assert.ok(
      bodies.some((x) => x.equals(last)),
      `round ${round}: after the PUTs, ${last.length} bytes of none of them`,
    );
    before = last;
  }
});

test('the test S3 server: a DeleteObject emptying a folder and a PutObject into it at once both succeed', async () => {
  for (let round = 0; round < 30; round++) {
    await put(`dir${round}/a/old`, Buffer.from('old'));
    const [del, add] = await Promise.allSettled([
      c.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: `dir${round}/a/old` })),
      put(`dir${round}/a/new`, Buffer.from('new')),
    ]);
    assert.equal(
      del.status,
      'fulfilled',
      `round ${round}: delete ${del.status === 'rejected' ? String(del.reason) : ''}`,
    );
    assert.equal(add.status, 'fulfilled', `round ${round}: put ${add.status === 'rejected' ? String(add.reason) : ''}`);
    assert.deepEqual(await s3.keys(`dir${round}/`), [`dir${round}/a/new`]);
  }
});
