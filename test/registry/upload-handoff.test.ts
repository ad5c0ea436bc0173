// Runs in the S3 pass too (test/registry), where the two nodes share one bucket.
// An upload session belongs to the repository, not to the user who opened it (as in Distribution): anyone who
// may push there can continue or finish it on any node, and nobody else can touch it.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { basic, startAuthRegistry, USERS } from '../auth/fixture.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('an upload opened by one user on one node is finished by another pusher on another node; a user who may not push is refused and changes nothing', async (t) => {
  const one = await startAuthRegistry();
  t.after(() => one.close());
  const two = await startAuthRegistry({ root: one.reg.root });
  t.after(() => two.close());
  const alice = { authorization: basic('alice', USERS.alice) };
  const carol = { authorization: basic('carol', USERS.carol) };
  const bob = { authorization: basic('bob', USERS.bob) };
  const body = Buffer.from('half of it, then the other half, from two users on two nodes');
  const [first, second] = [body.subarray(0, 20), body.subarray(20)];

  const post = await fetch(`${one.reg.url}/v2/team-a/app/blobs/uploads/`, { method: 'POST', headers: alice });
  assert.equal(post.status, 202);
  const path = new URL(post.headers.get('location')!, one.reg.url).pathname;
  const patch1 = await fetch(`${one.reg.url}${path}`, {
    method: 'PATCH',
    headers: { ...alice, 'content-type': 'application/octet-stream', 'content-range': `0-${first.length - 1}` },
    body: first,
  });
  assert.equal(patch1.status, 202);

  // bob may pull team-a but not push there, anonymous may do neither: both are refused on either node.
  for (const [who, headers] of [
    ['bob', bob],
    ['anonymous', {}],
  ] as const) {
    for (const node of [one, two]) {
      const p = await fetch(`${node.reg.url}${path}`, {
        method: 'PATCH',
        headers: {
          ...headers,
          'content-type': 'application/octet-stream',
          'content-range': `${first.length}-${first.length + 3}`,
        },
        body: Buffer.from('evil'),
      });
      assert.ok(p.status === 401 || p.status === 403, `${who} PATCH on a session of team-a: ${p.status}`);
      const put = await fetch(`${node.reg.url}${path}?digest=${sha(first)}`, { method: 'PUT', headers });
      assert.ok(put.status === 401 || put.status === 403, `${who} PUT on a session of team-a: ${put.status}`);
    }
  }

  // The session still holds exactly alice's bytes: carol continues it on the other node and finishes it.
  const status = await fetch(`${two.reg.url}${path}`, { headers: carol });
  assert.equal(status.status, 204);
  assert.equal(status.headers.get('range'), `0-${first.length - 1}`);
  const patch2 = await fetch(`${two.reg.url}${path}`, {
    method: 'PATCH',
    headers: {
      ...carol,
      'content-type': 'application/octet-stream',
      'content-range': `${first.length}-${body.length - 1}`,
    },
    body: second,
  });
  assert.equal(patch2.status, 202);
  const done = await fetch(`${two.reg.url}${path}?digest=${sha(body)}`, { method: 'PUT', headers: carol });
  assert.equal(done.status, 201);

  // Both nodes serve the blob whole.
  for (const node of [one, two]) {
    const g = await fetch(`${node.reg.url}/v2/team-a/app/blobs/${sha(body)}`, { headers: alice });
    assert.equal(g.status, 200);
    assert.deepEqual(Buffer.from(await g.arrayBuffer()), body);
  }
});
