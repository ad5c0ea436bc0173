import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pullsFolder, pullsNodePath, readPulls } from '../../src/gc/pulls.js';
import type { RepositoryName } from '../../src/oci/name.js';
import { startRegistry } from '../helpers/registry.js';

const REPO = 'team-a/app' as RepositoryName;
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

test('readPulls() merges every node\'s file, keeping the latest time per tag and per digest, and ignores what is malformed', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.close());
  const driver = reg.ctx.driver;
  assert.deepEqual(await readPulls(driver, REPO), { tags: new Map(), manifests: new Map() });
  const put = (node: string, doc: unknown) => driver.putContent(`${pullsFolder(REPO)}/${node}`, Buffer.from(typeof doc === 'string' ? doc : JSON.stringify(doc)));
  await put('node-a.json', { tags: { v1: 100, v2: 500 }, manifests: { [D1]: 300 } });
  await put('node-b.json', { tags: { v1: 200, 'bad tag': 900, v3: 'soon', v4: null }, manifests: { [D1]: 250, [D2]: 50, 'sha256:nothex': 1 } });
  await put('node-c.json', '{"tags": {"v1": 1e400}}');
  await put('node-d.json', 'not json at all');
  await put('node-e.json', '[1, 2]');
  await put('Bad_Node.json', { tags: { v2: 9999 } });
  await put('node-f.json', JSON.stringify({ tags: { v2: 8888 } }).padEnd(1024 * 1024 + 1, ' '));
  const pulls = await readPulls(driver, REPO);
  assert.deepEqual([...pulls.tags].sort(), [['v1', 200], ['v2', 500]]);
  assert.deepEqual([...pulls.manifests].sort(), [[D1, 300], [D2, 50]]);
});

test('pullsNodePath() refuses a node or repository name that could leave its folder', () => {
  assert.equal(pullsNodePath(REPO, 'node-1'), 'docker/registry/v2/_sluice/pulls/team-a/app/_nodes/node-1.json');
  assert.throws(() => pullsNodePath(REPO, '../x'));
  assert.throws(() => pullsNodePath('../etc' as RepositoryName, 'node-1'));
});
