import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFlows, decideFlow } from '../../src/policy/flows.js';

test('decideFlow() names the rule whose tag filter excluded a tag before a later deny rule refused it', () => {
  const flows = compileFlows([
    { name: 'library', images: ['docker.io/library/*'], tags: { exclude: ['*-rc*'] } },
    { name: 'rest', images: ['docker.io/**'], deny: true },
  ]);
  const d = decideFlow(flows, { repository: 'docker.io/library/nginx', tag: '1.27-rc1' });
  assert.equal(d.allowed, false);
  assert.match(
    d.reason,
    /flow rule 1 "library" \(docker\.io\/library\/\*\) matches the name but excludes tag 1\.27-rc1 \(\*-rc\*\)/,
  );
  assert.match(d.reason, /then flow rule 2 "rest" \(docker\.io\/\*\*\) denies it$/);
  // The rule's own deny, with nothing excluded before it, reads as before.
  assert.equal(
    decideFlow(flows, { repository: 'docker.io/evil/x', tag: '1' }).reason,
    'docker.io/evil/x:1 is not an approved upstream image: flow rule 2 "rest" (docker.io/**) denies it',
  );
});
