import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkIdentityRule, matchIdentity, parseIdentityRule, IdentityRuleError } from '../../src/sign/identity.js';
import type { IdentityRule } from '../../src/sign/types.js';

const D = 'sha256:' + 'a'.repeat(64);
const D2 = 'sha256:' + 'b'.repeat(64);

// [rule, signed docker-reference, image reference, accepted?]; semantics of containers/image's
// signature/policy_reference_match.go.
const cases: [IdentityRule, string | undefined, string | undefined, boolean][] = [
  // matchExact: same name and tag (or digest), never a name alone.
  [{ type: 'matchExact' }, 'example.com/app:v1', 'example.com/app:v1', true],
  [{ type: 'matchExact' }, 'example.com/app:v2', 'example.com/app:v1', false],
  [{ type: 'matchExact' }, 'example.com/app', 'example.com/app:v1', false],
  [{ type: 'matchExact' }, `example.com/app:v1`, `example.com/app@${D}`, false],
  [{ type: 'matchExact' }, 'busybox:1', 'docker.io/library/busybox:1', true],
  // matchRepoDigestOrExact: tag → exact; digest → same repository; never a signature without tag or digest.
  [{ type: 'matchRepoDigestOrExact' }, 'example.com/app:v1', 'example.com/app:v1', true],
  [{ type: 'matchRepoDigestOrExact' }, 'example.com/app:v2', 'example.com/app:v1', false],
  [{ type: 'matchRepoDigestOrExact' }, 'example.com/app:v2', `example.com/app@${D}`, true],
  [{ type: 'matchRepoDigestOrExact' }, `example.com/app@${D2}`, `example.com/app@${D}`, true],
  [{ type: 'matchRepoDigestOrExact' }, 'example.com/other:v1', `example.com/app@${D}`, false],
  [{ type: 'matchRepoDigestOrExact' }, 'example.com/app', `example.com/app@${D}`, false],
  // matchRepository: any tag of the same repository.
  [{ type: 'matchRepository' }, 'example.com/app', 'example.com/app:latest', true],
  [{ type: 'matchRepository' }, 'example.com/app:v1', 'example.com/app:latest', true],
  [{ type: 'matchRepository' }, 'docker.io/a/b', 'mirror.example.com/a/b:1', false],
  [{ type: 'matchRepository' }, 'nginx', 'docker.io/library/nginx:1', true],
  // exactReference: the signature must name exactly the given reference, whatever the image is called.
  [
    { type: 'exactReference', dockerReference: 'vendor.example/app:1' },
    'vendor.example/app:1',
    'mirror.local/app:1',
    true,
  ],
  [
    { type: 'exactReference', dockerReference: 'vendor.example/app:1' },
    'vendor.example/app:2',
    'mirror.local/app:1',
    false,
  ],
  [
    { type: 'exactReference', dockerReference: 'vendor.example/app:1' },
    'vendor.example/app',
    'mirror.local/app:1',
    false,
  ],
  [{ type: 'exactReference', dockerReference: 'vendor.example/app:1' }, 'vendor.example/app:1', undefined, true],
  // exactRepository: the signature must be in the given repository.
  [
    { type: 'exactRepository', dockerRepository: 'vendor.example/app' },
    'vendor.example/app:9',
    'mirror.local/x:1',
    true,
  ],
  [
    { type: 'exactRepository', dockerRepository: 'vendor.example/app' },
    'vendor.example/other:9',
    'mirror.local/x:1',
    false,
  ],
  [{ type: 'exactRepository', dockerRepository: 'vendor.example/app' }, 'vendor.example/app', undefined, true],
  // remapIdentity: the image's prefix is replaced, then matchRepoDigestOrExact.
  [
    { type: 'remapIdentity', prefix: 'private-mirror:5000/vendor-mirror', signedPrefix: 'vendor.example.com' },
    'vendor.example.com/product-a/image1:latest',
    'private-mirror:5000/vendor-mirror/product-a/image1:latest',
    true,
  ],
  [
    { type: 'remapIdentity', prefix: 'private-mirror:5000/vendor-mirror', signedPrefix: 'vendor.example.com' },
    'vendor.example.com/product-a/image1:v2',
    'private-mirror:5000/vendor-mirror/product-a/image1:latest',
    false,
  ],
  [
    { type: 'remapIdentity', prefix: 'private-mirror:5000/vendor-mirror', signedPrefix: 'vendor.example.com' },
    'private-mirror:5000/vendor-mirror/product-a/image1:latest',
    'private-mirror:5000/vendor-mirror/product-a/image1:latest',
    false,
  ],
  // A prefix that only shares characters (vendor-mirrorx) does not remap; the name is then compared as it is.
  [
    { type: 'remapIdentity', prefix: 'private-mirror:5000/vendor-mirror', signedPrefix: 'vendor.example.com' },
    'vendor.example.com/X/image1:latest',
    'private-mirror:5000/vendor-mirrorx/image1:latest',
    false,
  ],
  [
    { type: 'remapIdentity', prefix: 'private-mirror:5000/vendor-mirror', signedPrefix: 'vendor.example.com' },
    'private-mirror:5000/vendor-mirrorx/image1:latest',
    'private-mirror:5000/vendor-mirrorx/image1:latest',
    true,
  ],
  [
    { type: 'remapIdentity', prefix: 'mirror.local/docker.io', signedPrefix: 'docker.io' },
    'docker.io/library/busybox:1',
    'mirror.local/docker.io/library/busybox:1',
    true,
  ],
  [
    { type: 'remapIdentity', prefix: 'mirror.local/docker.io', signedPrefix: 'docker.io' },
    'docker.io/library/busybox',
    `mirror.local/docker.io/library/busybox@${D}`,
    false,
  ],
  [
    { type: 'remapIdentity', prefix: 'mirror.local/docker.io', signedPrefix: 'docker.io' },
    'docker.io/library/busybox:7',
    `mirror.local/docker.io/library/busybox@${D}`,
    true,
  ],
];

for (const [rule, signed, image, want] of cases) {
  test(`${rule.type}: signed ${signed}, image ${image ?? '(no name)'} → ${want ? 'accepted' : 'refused'}`, () => {
    const m = matchIdentity(rule, signed, image);
    assert.equal(m.ok, want, m.reason);
    assert.ok(m.reason.length > 10);
  });
}

test('rules that compare with the image name refuse an image without one (an OCI layout), naming the rules that work', () => {
  for (const type of ['matchExact', 'matchRepoDigestOrExact', 'matchRepository'] as const) {
    const m = matchIdentity({ type }, 'example.com/app:1', undefined);
    assert.equal(m.ok, false);
    assert.match(m.reason, /exactReference or exactRepository/);
  }
});

test('a mismatch names both names', () => {
  const m = matchIdentity({ type: 'matchRepository' }, 'docker.io/a/b', 'mirror.example.com/a/b:1');
  assert.equal(m.reason, 'signed for docker.io/a/b, this is mirror.example.com/a/b (matchRepository)');
});

test('a bundle without a signed name satisfies no rule', () => {
  assert.match(matchIdentity({ type: 'matchRepository' }, undefined, 'example.com/a:1').reason, /names no image/);
});

test('command-line rules parse, and malformed ones are refused with what to write', () => {
  assert.deepEqual(parseIdentityRule('matchRepository'), { type: 'matchRepository' });
  assert.deepEqual(parseIdentityRule('exactReference:example.com/a:1'), {
    type: 'exactReference',
    dockerReference: 'example.com/a:1',
  });
  assert.deepEqual(parseIdentityRule('remapIdentity:mirror.local/docker.io=docker.io'), {
    type: 'remapIdentity',
    prefix: 'mirror.local/docker.io',
    signedPrefix: 'docker.io',
  });
  assert.throws(() => parseIdentityRule('exactReference:example.com/a'), IdentityRuleError);
  assert.throws(() => parseIdentityRule('exactReference'), /exactReference needs/);
  assert.throws(
    () => parseIdentityRule('remapIdentity:mirror.local/App=docker.io'),
    /must be a host\[:port\] or a name that starts with one/,
  );
  assert.throws(() => parseIdentityRule('remapIdentity:mirror.local/x:1=docker.io'), /without tag or digest/);
  assert.throws(() => parseIdentityRule('matchSomething'), /unknown signedIdentity type/);
});

test('remapIdentity takes Docker Hub namespaces as written, as containers/image does (docker.io/konard is not docker.io/library/konard)', () => {
  assert.deepEqual(parseIdentityRule('remapIdentity:127.0.0.1:5100/konard=docker.io/library'), {
    type: 'remapIdentity',
    prefix: '127.0.0.1:5100/konard',
    signedPrefix: 'docker.io/library',
  });
  assert.deepEqual(
    checkIdentityRule({ type: 'remapIdentity', prefix: 'mirror.local/hub', signedPrefix: 'docker.io/konard' }),
    { type: 'remapIdentity', prefix: 'mirror.local/hub', signedPrefix: 'docker.io/konard' },
  );
  const hub = { type: 'remapIdentity', prefix: '127.0.0.1:5100/konard', signedPrefix: 'docker.io/library' } as const;
  assert.equal(matchIdentity(hub, 'docker.io/library/hive-mind:1', '127.0.0.1:5100/konard/hive-mind:1').ok, true);
  assert.equal(matchIdentity(hub, 'docker.io/konard/hive-mind:1', '127.0.0.1:5100/konard/hive-mind:1').ok, false);
  const ns = { type: 'remapIdentity', prefix: 'mirror.local/hub', signedPrefix: 'docker.io/konard' } as const;
  assert.equal(matchIdentity(ns, 'docker.io/konard/hive-mind:1', 'mirror.local/hub/hive-mind:1').ok, true);
  // A repository prefix ends at the tag's colon too (containers/image's refMatchesPrefix).
  const repo = { type: 'remapIdentity', prefix: 'mirror.local/hub/app', signedPrefix: 'docker.io/konard/app' } as const;
  assert.equal(matchIdentity(repo, 'docker.io/konard/app:1', 'mirror.local/hub/app:1').ok, true);
  assert.equal(matchIdentity(repo, 'docker.io/konard/app:1', 'mirror.local/hub/apps:1').ok, false);
});
