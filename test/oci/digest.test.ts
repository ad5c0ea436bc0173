import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Digester, digestOf, isDigest, parseDigest } from '../../src/oci/digest.js';

test('digests of known content', () => {
  assert.equal(digestOf(''), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(digestOf('{}'), 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
  const d = new Digester();
  d.update(Buffer.from('{'));
  d.update(Buffer.from('}'));
  assert.equal(d.digest(), digestOf('{}'));
  assert.match(digestOf('x', 'sha512'), /^sha512:[a-f0-9]{128}$/);
});

test('only well-formed digests of supported algorithms are accepted', () => {
  assert.ok(isDigest('sha256:' + '0'.repeat(64)));
  assert.ok(isDigest('sha512:' + '0'.repeat(128)));
  for (const bad of [
    'sha256:' + '0'.repeat(63),
    'sha256:' + 'A'.repeat(64),
    'md5:' + '0'.repeat(32),
    'sha256',
    ':abc',
    'sha256:../../x',
    'sha256:' + '0'.repeat(64) + '/x',
  ]) {
    assert.ok(!isDigest(bad), bad);
  }
  assert.throws(() => parseDigest('blake3:' + '0'.repeat(64)), /unsupported/);
});
