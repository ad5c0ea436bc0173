import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { PublicnessChecker } from '../../src/passthrough/publicness.js';
import { upstreamSchema } from '../../src/upstream/config.js';
import { Upstreams } from '../../src/upstream/upstreams.js';
import { USERS } from '../auth/fixture.js';
import { freePort } from '../helpers/clients.js';
import { makeImage } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';
import { alice, pushAs, startHubStandIn } from './fixture.js';

const MISSING = `sha256:${'0'.repeat(64)}`;

test('anonymous HEAD by digest: 200 is public; a login-only repository and an unknown digest are not', async () => {
  const hub = await startHubStandIn(['konard/secret']);
  const checker = new PublicnessChecker(new Upstreams({ 'docker.io': upstreamSchema.parse({ url: hub.reg.url }) }));
  try {
    const pub = await makeImage({ format: 'docker', label: 'pub' });
    const sec = await makeImage({ format: 'docker', label: 'sec' });
    await pushAs(hub.reg.url, 'library/busybox', '1', pub);
    await pushAs(hub.reg.url, 'konard/secret', '1', sec, alice('docker.io').header);

    assert.deepEqual(
      await checker.check({ registry: 'docker.io', repository: 'library/busybox', digests: [pub.digest] }),
      {
        public: true,
        reason: `anonymous HEAD of docker.io/library/busybox@${pub.digest} answered 200`,
      },
    );
    const secret = await checker.check({ registry: 'docker.io', repository: 'konard/secret', digests: [sec.digest] });
    assert.equal(secret.public, false);
    assert.match(secret.reason, /^anonymous (HEAD|token request) answered 401 for docker\.io\/konard\/secret$/);
    const unknown = await checker.check({ registry: 'docker.io', repository: 'library/busybox', digests: [MISSING] });
    assert.deepEqual(unknown, {
      public: false,
      reason: 'anonymous HEAD answered 404 (the registry does not have that digest) for docker.io/library/busybox',
    });
    // One of several digests is enough.
    assert.equal(
      (await checker.check({ registry: 'docker.io', repository: 'library/busybox', digests: [MISSING, pub.digest] }))
        .public,
      true,
    );

    // Answers are kept for the run.
    const before = checker.requests;
    await checker.check({ registry: 'docker.io', repository: 'library/busybox', digests: [pub.digest] });
    await checker.check({ registry: 'docker.io', repository: 'konard/secret', digests: [sec.digest] });
    assert.equal(checker.requests, before);
  } finally {
    await checker.close();
    await hub.close();
  }
});

test("an upstream's own credentials are not used: anonymous means anonymous", async () => {
  const hub = await startHubStandIn(['konard/secret']);
  const upstreams = new Upstreams({
    'docker.io': upstreamSchema.parse({ url: hub.reg.url, username: 'alice', password: USERS.alice }),
  });
  const checker = new PublicnessChecker(upstreams);
  try {
    const sec = await makeImage({ format: 'docker', label: 'sec' });
    await pushAs(hub.reg.url, 'konard/secret', '1', sec, alice('docker.io').header);
    // With alice's credentials the upstream client can read it; the public check must not.
    const withCreds = upstreams.orDefault('docker.io').client('konard/secret');
    const r = await withCreds.send({
      method: 'HEAD',
      path: `/v2/konard/secret/manifests/${sec.digest}`,
      headers: { accept: sec.mediaType },
    });
    await r.body.dump();
    assert.equal(r.statusCode, 200);
    assert.equal(
      (await checker.check({ registry: 'docker.io', repository: 'konard/secret', digests: [sec.digest] })).public,
      false,
    );
  } finally {
    await checker.close();
    await upstreams.close();
    await hub.close();
  }
});

test('a registry without auth is reached as upstreams say (loopback: plain HTTP); an unreachable one is asked once', async () => {
  const reg = await startRegistry();
  const port = await freePort();
  const checker = new PublicnessChecker(new Upstreams({}));
  try {
    const img = await makeImage({ format: 'docker', label: 'open' });
    await pushAs(reg.url, 'team/app', '1', img);
    assert.equal(
      (await checker.check({ registry: reg.host, repository: 'team/app', digests: [img.digest] })).public,
      true,
    );

    const down = `127.0.0.1:${port}`;
    const a = await checker.check({ registry: down, repository: 'a/one', digests: [img.digest] });
    assert.equal(a.public, false);
    assert.match(
      a.reason,
      new RegExp(
        `^registry ${down} could not be reached \\(.*ECONNREFUSED.*\\), so ${down}/a/one is not proven public$`,
      ),
    );
    const before = checker.requests;
    const b = await checker.check({ registry: down, repository: 'b/two', digests: [img.digest] });
    assert.equal(b.public, false);
    assert.equal(checker.requests, before, 'the unreachable registry is not asked again in this run');
  } finally {
    await checker.close();
    await reg.close();
  }
});

test('a registry that drips its token answer forever gets "not proven public" once the deadline passes, and is not asked again', {
  timeout: 120_000,
}, async (t) => {
  const drips = new Set<NodeJS.Timeout>();
  const seen: string[] = [];
  // Accepts the connection and answers at once, so no connect or header timeout fires: only a deadline ends the question.
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.url === '/v2/') {
      res
        .writeHead(401, { 'www-authenticate': `Bearer realm="http://${req.headers.host}/token",service="drip"` })
        .end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"token": "');
    const drip = setInterval(() => res.write('x'), 100);
    drips.add(drip);
    res.on('close', () => clearInterval(drip));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const checker = new PublicnessChecker(new Upstreams({}), { deadlineMs: 1500 });
  t.after(async () => {
    for (const d of drips) clearInterval(d);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await checker.close();
  });
  const a = await checker.check({ registry: host, repository: 'team/app', digests: [MISSING] });
  assert.deepEqual(a, {
    public: false,
    reason: `registry ${host} did not answer within 1.5 s, so ${host}/team/app is not proven public`,
  });
  const asked = seen.length;
  assert.ok(
    seen.some((s) => s.startsWith('GET /token')),
    seen.join(', '),
  );
  const b = await checker.check({ registry: host, repository: 'team/other', digests: [MISSING] });
  assert.deepEqual(b, {
    public: false,
    reason: `registry ${host} did not answer within 1.5 s, so ${host}/team/other is not proven public`,
  });
  assert.equal(seen.length, asked, 'the registry that ran out of time is not asked again in this run');
});
