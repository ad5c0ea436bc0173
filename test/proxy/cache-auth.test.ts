import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { assertIntact, bytesOf, errorOf } from '../helpers/oci-http.js';
import { basic, startAuthRegistry, USERS } from '../auth/fixture.js';

async function token(url: string, scope: string, user?: keyof typeof USERS): Promise<string> {
  const r = await fetch(
    `${url}/token?service=sluice&scope=${encodeURIComponent(scope)}`,
    user ? { headers: { authorization: basic(user, USERS[user]) } } : {},
  );
  assert.equal(r.status, 200);
  return ((await r.json()) as { token: string }).token;
}

test('access rules apply to the client on the cache repository, whichever name its token was issued for', async () => {
  const up = await startRegistry();
  const f = await startAuthRegistry({
    access: {
      rules: [
        { repos: ['docker.io/library/*'], who: ['authenticated'], allow: ['pull'] },
        { repos: ['team/**'], who: ['authenticated'], allow: ['pull', 'push'] },
      ],
    },
    config: {
      upstreams: { 'docker.io': { url: up.url } },
      flows: [{ images: ['docker.io/library/*', 'docker.io/someone/*'] }],
    },
  });
  const cache = f.reg;
  try {
    const img = await makeImage({ label: 'auth' });
    await pushImage(up.url, 'library/busybox', '1', img);
    await pushImage(up.url, 'someone/tool', '1', img);
    // Anonymous: challenged, nothing fetched.
    const anon = await fetch(`${cache.url}/v2/docker.io/library/busybox/manifests/1`);
    assert.equal(anon.status, 401);
    // A mirror client (dockerd's registry-mirrors) asks its token for `library/busybox`.
    const t = await token(cache.url, 'repository:library/busybox:pull', 'alice');
    const r = await fetch(`${cache.url}/v2/library/busybox/manifests/1`, {
      headers: { authorization: `Bearer ${t}`, accept: img.mediaType },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(await bytesOf(r), img.manifest);
    const b = await fetch(`${cache.url}/v2/library/busybox/blobs/${img.layers[0]!.descriptor.digest}`, {
      headers: { authorization: `Bearer ${t}` },
    });
    assert.deepEqual(await bytesOf(b), img.layers[0]!.bytes);
    // The same token does not open another cache repository, and the policy refuses one it does not allow.
    const other = await fetch(`${cache.url}/v2/library/nginx/manifests/1`, {
      headers: { authorization: `Bearer ${t}` },
    });
    assert.equal(other.status, 401);
    const t2 = await token(cache.url, 'repository:docker.io/someone/tool:pull', 'alice');
    const denied = await fetch(`${cache.url}/v2/docker.io/someone/tool/manifests/1`, {
      headers: { authorization: `Bearer ${t2}` },
    });
    assert.ok(denied.status === 401 || denied.status === 403, String(denied.status));
    // Basic auth by full name.
    const full = await fetch(`${cache.url}/v2/docker.io/library/busybox/manifests/1`, {
      headers: { authorization: basic('bob', USERS.bob), accept: img.mediaType },
    });
    assert.equal(full.status, 200);
    // A local repository beside the cache keeps its own rules; a name the flows give to docker.io cannot be one.
    const push = await fetch(`${cache.url}/v2/team/app/blobs/uploads/`, {
      method: 'POST',
      headers: { authorization: basic('alice', USERS.alice) },
    });
    assert.equal(push.status, 202);
    const hijack = await fetch(`${cache.url}/v2/library/busybox/blobs/uploads/`, {
      method: 'POST',
      headers: { authorization: basic('alice', USERS.alice) },
    });
    assert.equal(hijack.status, 403);
    assert.match((await errorOf(hijack)).message, /docker\.io\/library\/busybox is a cache of docker\.io/);
  } finally {
    await f.close();
    await up.close();
  }
});

test("a cache renews its upstream token before it expires: a pull after the token's lifetime is not answered 401 first", async () => {
  // The images are put in place through a plain registry on the upstream's storage (pushes need no token there).
  const seed = await startRegistry();
  const a = await makeImage({ label: 'token-a' });
  const b = await makeImage({ label: 'token-b' });
  await pushImage(seed.url, 'library/app', '1', a);
  await pushImage(seed.url, 'library/app', '2', b);
  const up = await startAuthRegistry({
    root: seed.root,
    access: { rules: [{ repos: ['library/**'], who: ['alice'], allow: ['pull'] }] },
    auth: { issuer: { expiration: 2 } },
  });
  const proxy = await startFaultProxy(up.reg.url);
  const cache = await startRegistry({
    upstreams: { 'docker.io': { url: proxy.url, username: 'alice', password: USERS.alice } },
    flows: [{ images: ['docker.io/library/*'] }],
  });
  try {
    await assertIntact(cache.url, 'docker.io/library/app', '1', a);
    // The token for library/app lives 2 s; the next pull comes after that.
    await sleep(2200);
    const from = proxy.seen.length;
    await assertIntact(cache.url, 'docker.io/library/app', '2', b);
    const asked = proxy.seen.slice(from).filter((s) => s === 'GET /v2/library/app/manifests/2');
    assert.equal(asked.length, 1, proxy.seen.slice(from).join('\n'));
  } finally {
    await cache.close();
    await proxy.close();
    await up.close();
    await seed.close();
  }
});
