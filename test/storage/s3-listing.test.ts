import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { S3Driver, type S3Options } from '../../src/storage/s3.js';
import { testS3 } from '../helpers/registry.js';

// Listings longer than one page go through S3 continuation tokens; s3rver 3.7.1 could not make one on
// Node 20 (DES is gone from OpenSSL 3) until test/helpers/s3.ts stood in for its cipher.

test('on s3rver, a directory of two objects stats as one (a one-key page), and 1001 objects are listed page by page and deleted', async () => {
  const s3 = await testS3();
  const root = `listing-${randomUUID()}`;
  const d = new S3Driver(s3.config(root) as unknown as S3Options);
  try {
    await d.putContent('two/a', Buffer.from('a'));
    await d.putContent('two/b', Buffer.from('b'));
    assert.equal((await d.stat('two'))?.isDirectory, true);
    const names = Array.from({ length: 1001 }, (_, i) => `k${String(i).padStart(4, '0')}`);
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(names.slice(i, i + 50).map((n) => d.putContent(`many/${n}`, Buffer.from(n))));
    }
    assert.deepEqual((await d.list('many')).sort(), names);
    assert.equal((await s3.keys(`${root}/many/`)).length, 1001);
    // Deleting a directory lists every key under it, 1000 a page.
    await d.delete('many');
    assert.deepEqual(await s3.keys(`${root}/many/`), []);
    assert.equal(await d.stat('many'), null);
  } finally {
    d.destroy();
  }
});
