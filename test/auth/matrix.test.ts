import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { scratch } from '../helpers/clients.js';
import { startRegistry } from '../helpers/registry.js';
import { sluice } from '../helpers/sluice-cli.js';
import { makeImage, pushImage, pushManifest, type TestImage } from '../helpers/images.js';
import { basic, EXAMPLE_ACCESS, jwtPayload, startAuthRegistry, USERS } from './fixture.js';

// Expected answers, written by hand from the example policy (not computed by the policy module).
const REPOS = [
  'team-a/app',
  'alice/app',
  'public/app',
  'docker.io/library/nginx',
  'docker.io/konard/hive-mind',
  'docker.io/evil/x',
  'secret/app',
] as const;
type Who = 'anonymous' | 'alice' | 'bob' | 'carol' | 'builder';
const EXPECTED: Record<Who, Record<(typeof REPOS)[number], string>> = {
  //            team-a/app   alice/app  public/app  nginx   hive-mind  evil/x  secret/app
  anonymous: {
    'team-a/app': '',
    'alice/app': '',
    'public/app': 'pull',
    'docker.io/library/nginx': 'pull',
    'docker.io/konard/hive-mind': 'pull',
    'docker.io/evil/x': '',
    'secret/app': '',
  },
  alice: {
    'team-a/app': 'pull,push',
    'alice/app': 'pull,push,delete',
    'public/app': 'pull',
    'docker.io/library/nginx': 'pull',
    'docker.io/konard/hive-mind': 'pull',
    'docker.io/evil/x': '',
    'secret/app': '',
  },
  bob: {
    'team-a/app': '',
    'alice/app': '',
    'public/app': 'pull',
    'docker.io/library/nginx': 'pull',
    'docker.io/konard/hive-mind': 'pull',
    'docker.io/evil/x': '',
    'secret/app': '',
  },
  carol: {
    'team-a/app': 'pull,push',
    'alice/app': '',
    'public/app': 'pull',
    'docker.io/library/nginx': 'pull',
    'docker.io/konard/hive-mind': 'pull',
    'docker.io/evil/x': '',
    'secret/app': '',
  },
  builder: {
    'team-a/app': 'pull,push',
    'alice/app': '',
    'public/app': 'pull',
    'docker.io/library/nginx': 'pull',
    'docker.io/konard/hive-mind': 'pull',
    'docker.io/evil/x': '',
    'secret/app': '',
  },
};
const PRINCIPALS = Object.keys(EXPECTED) as Who[];

test('principals × repositories × actions through the HTTP API', async () => {
  // Seed every repository through an open registry on the same storage, then put access control in front.
  const open = await startRegistry();
  const img = await makeImage({ label: 'matrix' });
  for (const repo of REPOS) {
    await pushImage(open.url, repo, 'seed', img);
    for (const p of PRINCIPALS)
      assert.equal((await pushManifest(open.url, repo, `d-${p}`, img.manifest, img.mediaType)).status, 201);
  }
  await open.app.close();
  const fx = await startAuthRegistry({ root: open.root });
  const url = fx.reg.url;
  const creds = (p: Who): Record<string, string> =>
    p === 'anonymous'
      ? {}
      : { authorization: p === 'builder' ? basic('robot$builder', fx.robots.builder!) : basic(p, USERS[p]) };
  const wrong: string[] = [];
  try {
    for (const p of PRINCIPALS) {
      for (const repo of REPOS) {
        const allowed = new Set(EXPECTED[p][repo].split(',').filter(Boolean));
        const attempts: [string, () => Promise<Response>, number][] = [
          [
            'pull',
            () => fetch(`${url}/v2/${repo}/manifests/seed`, { headers: { ...creds(p), accept: img.mediaType } }),
            200,
          ],
          ['pull', () => fetch(`${url}/v2/${repo}/blobs/${img.config.descriptor.digest}`, { headers: creds(p) }), 200],
          ['pull', () => fetch(`${url}/v2/${repo}/tags/list`, { headers: creds(p) }), 200],
          [
            'push',
            () =>
              fetch(`${url}/v2/${repo}/manifests/p-${p}`, {
                method: 'PUT',
                body: img.manifest,
                headers: { ...creds(p), 'content-type': img.mediaType },
              }),
            201,
          ],
          ['push', () => fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: creds(p) }), 202],
          ['delete', () => fetch(`${url}/v2/${repo}/manifests/d-${p}`, { method: 'DELETE', headers: creds(p) }), 202],
        ];
        for (const [action, go, okStatus] of attempts) {
          const r = await go();
          const body = await r.text();
          const want = allowed.has(action) ? okStatus : p === 'anonymous' ? 401 : 403;
          if (r.status !== want)
            wrong.push(`${p} ${action} ${repo}: got ${r.status}, want ${want}: ${body.slice(0, 200)}`);
          if (
            r.status === 401 &&
            !/^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token",service="sluice",scope="repository:/.test(
              r.headers.get('www-authenticate') ?? '',
            )
          ) {
            wrong.push(`${p} ${action} ${repo}: challenge ${r.headers.get('www-authenticate')}`);
          }
          if (r.status === 403 && !/"code":"DENIED".*(rule \d|no rule allows)/.test(body))
            wrong.push(`${p} ${action} ${repo}: denial names no rule: ${body}`);
        }
        // The token service grants exactly the same, and nothing else.
        const tr = await fetch(`${url}/token?service=sluice&scope=repository:${repo}:pull,push,delete`, {
          headers: creds(p),
        });
        assert.equal(tr.status, 200);
        const access = (jwtPayload(((await tr.json()) as { token: string }).token).access ?? []) as {
          name: string;
          actions: string[];
        }[];
        const got = access
          .flatMap((a) => (a.name === repo ? a.actions : [`wrong-repo:${a.name}`]))
          .filter((a) => a !== 'overwrite');
        if (got.sort().join(',') !== [...allowed].sort().join(','))
          wrong.push(`${p} token ${repo}: got ${got}, want ${[...allowed]}`);
      }
    }
    assert.deepEqual(wrong, []);
  } finally {
    await fx.close();
  }
});

test('the catalog needs list and shows only what the caller may pull', async () => {
  const open = await startRegistry();
  const img = await makeImage();
  for (const repo of ['alice/app', 'team-a/app', 'public/app', 'secret/app'])
    await pushImage(open.url, repo, 'seed', img);
  await open.app.close();
  const fx = await startAuthRegistry({ root: open.root });
  try {
    const anon = await fetch(`${fx.reg.url}/v2/_catalog`);
    assert.equal(anon.status, 401);
    assert.match(anon.headers.get('www-authenticate') ?? '', /scope="registry:catalog:\*"/);
    const cat = async (u: keyof typeof USERS) =>
      (
        (await (
          await fetch(`${fx.reg.url}/v2/_catalog`, { headers: { authorization: basic(u, USERS[u]) } })
        ).json()) as { repositories: string[] }
      ).repositories;
    assert.deepEqual(await cat('alice'), ['alice/app', 'public/app', 'team-a/app']);
    assert.deepEqual(await cat('bob'), ['public/app']);
  } finally {
    await fx.close();
  }
});

/** Pushes an image's blobs and manifest with the given auth headers; resolves with the manifest PUT's response. */
async function pushAs(
  url: string,
  repo: string,
  tag: string,
  img: TestImage,
  h: Record<string, string>,
): Promise<Response> {
  for (const blob of [img.config, ...img.layers]) {
    const r = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${blob.descriptor.digest}`, {
      method: 'POST',
      body: blob.bytes,
      headers: { ...h, 'content-type': 'application/octet-stream' },
    });
    assert.equal(r.status, 201);
  }
  return fetch(`${url}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    body: img.manifest,
    headers: { ...h, 'content-type': img.mediaType },
  });
}

test('re-pointing an immutable tag is refused; a fresh push of it is not', async () => {
  const fx = await startAuthRegistry();
  const h = { authorization: basic('alice', USERS.alice) };
  try {
    const a = await makeImage({ label: 'a' });
    const b = await makeImage({ label: 'b' });
    const put = (tag: string, img: TestImage) => pushAs(fx.reg.url, 'team-a/app', tag, img, h);
    assert.equal((await put('v1', a)).status, 201);
    assert.equal((await put('v1', a)).status, 201, 'pushing the same digest again is not an overwrite');
    const r = await put('v1', b);
    assert.equal(r.status, 403);
    assert.match(await r.text(), /overwrite on team-a\/app:v1 for alice denied by rule 1 \\"immutable releases\\"/);
    assert.equal((await put('latest', a)).status, 201);
    assert.equal((await put('latest', b)).status, 201);
  } finally {
    await fx.close();
  }
});

test('a bearer token cannot re-point an immutable tag either: the policy is evaluated with the tag', async () => {
  const fx = await startAuthRegistry();
  try {
    const tr = await fetch(`${fx.reg.url}/token?service=sluice&scope=repository:team-a/app:pull,push`, {
      headers: { authorization: basic('alice', USERS.alice) },
    });
    assert.equal(tr.status, 200);
    const token = ((await tr.json()) as { token: string }).token;
    const granted = (jwtPayload(token).access as { name: string; actions: string[] }[])[0]!;
    assert.ok(
      granted.actions.includes('overwrite'),
      'the token carries overwrite for the repository (for mutable tags)',
    );
    const h = { authorization: `Bearer ${token}` };
    const a = await makeImage({ label: 'a' });
    const b = await makeImage({ label: 'b' });
    const put = (tag: string, img: TestImage) => pushAs(fx.reg.url, 'team-a/app', tag, img, h);
    assert.equal((await put('v1', a)).status, 201);
    const r = await put('v1', b);
    assert.equal(r.status, 403);
    assert.match(await r.text(), /immutable releases/);
    const still = await fetch(`${fx.reg.url}/v2/team-a/app/manifests/v1`, { headers: { ...h, accept: a.mediaType } });
    assert.equal(still.headers.get('docker-content-digest'), a.digest, 'v1 still points at the first image');
    assert.equal((await put('latest', a)).status, 201);
    assert.equal((await put('latest', b)).status, 201, 'a mutable tag can be re-pointed with the same token');
  } finally {
    await fx.close();
  }
});

test('the immutable-release rule team-a/**:v* holds for nested repositories and team-a itself, over Basic and bearer, as policy explain says', async () => {
  const fx = await startAuthRegistry();
  const s = await scratch();
  try {
    const cfg = join(s.dir, 'sluice.yml');
    // The same config the registry runs with: its users, robots and the example policy.
    await writeFile(
      cfg,
      stringify({
        auth: { htpasswd: { realm: 'sluice-test', path: join(fx.dir, 'htpasswd') }, robots: { path: fx.robotsPath } },
        access: EXAMPLE_ACCESS,
      }),
    );
    const a = await makeImage({ label: 'a' });
    const b = await makeImage({ label: 'b' });
    const basicH = { authorization: basic('alice', USERS.alice) };
    for (const repo of ['team-a/x/app', 'team-a']) {
      const tr = await fetch(`${fx.reg.url}/token?service=sluice&scope=repository:${repo}:pull,push`, {
        headers: basicH,
      });
      assert.equal(tr.status, 200);
      const bearerH = { authorization: `Bearer ${((await tr.json()) as { token: string }).token}` };
      for (const [via, h] of [
        ['basic', basicH],
        ['bearer', bearerH],
      ] as const) {
        const tag = `v1-${via}`;
        assert.equal((await pushAs(fx.reg.url, repo, tag, a, h)).status, 201, `${via}: first push of ${repo}:${tag}`);
        const r = await pushAs(fx.reg.url, repo, tag, b, h);
        assert.equal(r.status, 403, `${via}: re-pointing ${repo}:${tag}`);
        assert.match(
          await r.text(),
          new RegExp(
            `overwrite on ${repo}:${tag} for alice denied by rule 1 \\\\"immutable releases\\\\" \\(pattern \\\\"team-a/\\*\\*:v\\*\\\\"`,
          ),
        );
        const still = await fetch(`${fx.reg.url}/v2/${repo}/manifests/${tag}`, {
          headers: { ...h, accept: a.mediaType },
        });
        assert.equal(
          still.headers.get('docker-content-digest'),
          a.digest,
          `${via}: ${repo}:${tag} still points at the first image`,
        );
        assert.equal((await pushAs(fx.reg.url, repo, `latest-${via}`, a, h)).status, 201);
        assert.equal(
          (await pushAs(fx.reg.url, repo, `latest-${via}`, b, h)).status,
          201,
          `${via}: a mutable tag of ${repo} can be re-pointed`,
        );
      }
      const denied = await sluice([
        'policy',
        'explain',
        '-c',
        cfg,
        '--user',
        'alice',
        '--action',
        'push,overwrite',
        `${repo}:v1-basic`,
      ]);
      assert.equal(denied.code, 1, `explain exits 1 when an action is denied: ${denied.stderr}`);
      assert.match(
        denied.stdout,
        /^push: ALLOWED\n[\s\S]*overwrite: DENIED\n {2}rule: +rule 1 "immutable releases": repos \[team-a\/\*\*:v\*\][\s\S]*pattern: team-a\/\*\*:v\*/,
      );
      const allowed = await sluice([
        'policy',
        'explain',
        '-c',
        cfg,
        '--user',
        'alice',
        '--action',
        'push,overwrite',
        `${repo}:latest-basic`,
      ]);
      assert.equal(allowed.code, 0, allowed.stdout + allowed.stderr);
      assert.match(allowed.stdout, /^push: ALLOWED\n[\s\S]*overwrite: ALLOWED\n {2}rule: +rule 2:/);
    }
    const check = await sluice(['policy', 'check', '-c', cfg]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /: 6 rules, 0 errors, 0 warnings\n$/);
  } finally {
    await s.cleanup();
    await fx.close();
  }
});
