import { test } from 'node:test';
import assert from 'node:assert/strict';
import { literalTags } from '../../src/sync/select.js';
import { readSkopeoYaml } from '../../src/sync/skopeo-yaml.js';

test('literalTags: a selection that only names tags needs no tag list; anything that must see the list says so', () => {
  assert.deepEqual(literalTags({ include: ['1.0', 'latest', '2'] }), ['1.0', '2', 'latest']);
  assert.deepEqual(literalTags({ include: ['a', 'b'], exclude: ['b'] }), ['a']);
  // skopeo's YAML lists tags as anchored, escaped regexes; a list of digests alone names no tag.
  const yaml = readSkopeoYaml(
    [
      'reg.example:',
      '  images:',
      '    app: ["1.36", "v2.0.1"]',
      '    only-digest: ["sha256:' + 'a'.repeat(64) + '"]',
      '',
    ].join('\n'),
    'sync.yml',
  );
  assert.deepEqual(literalTags(yaml.jobs[0]!.tags), ['1.36', 'v2.0.1']);
  assert.deepEqual(literalTags(yaml.jobs[1]!.tags), []);
  for (const needsList of [
    undefined,
    {},
    { include: ['1.*'] },
    { include: ['/^v1\\./'] },
    { include: ['1'], latest: 2 },
    { include: ['1'], semver: '>=1' },
    { exclude: ['rc'] },
  ]) {
    assert.equal(literalTags(needsList), undefined, JSON.stringify(needsList));
  }
});
