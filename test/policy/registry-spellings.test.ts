import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFlows, decideFlow } from '../../src/policy/flows.js';
import { compilePolicy, decide } from '../../src/policy/index.js';
import { repositorySpellings } from '../../src/policy/patterns.js';

test('a short pattern means Docker Hub: it never approves the same path on another registry', () => {
  assert.deepEqual(repositorySpellings('ghcr.io/konard/hive-mind'), ['ghcr.io/konard/hive-mind']);
  assert.deepEqual(repositorySpellings('docker.io/library/nginx').sort(), [
    'docker.io/library/nginx',
    'library/nginx',
    'nginx',
  ]);
  const flows = compileFlows([{ images: ['konard/hive-mind*'] }]);
  assert.equal(decideFlow(flows, { repository: 'docker.io/konard/hive-mind', tag: '1' }).allowed, true);
  assert.equal(decideFlow(flows, { repository: 'ghcr.io/konard/hive-mind', tag: '1' }).allowed, false);
  assert.equal(
    decideFlow(compileFlows([{ images: ['ghcr.io/konard/*'] }]), { repository: 'ghcr.io/konard/hive-mind', tag: '1' })
      .allowed,
    true,
  );
  const policy = compilePolicy({
    groups: {},
    sets: {},
    readonly: [],
    rules: [{ repos: ['konard/**'], who: ['*'], allow: ['pull'], deny: [] }],
  });
  assert.equal(
    decide(policy, { principal: { kind: 'anonymous' }, action: 'pull', target: { repository: 'docker.io/konard/x' } })
      .allowed,
    true,
  );
  assert.equal(
    decide(policy, { principal: { kind: 'anonymous' }, action: 'pull', target: { repository: 'quay.io/konard/x' } })
      .allowed,
    false,
  );
});
