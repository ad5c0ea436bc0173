import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, pushBlob, pushManifest, writeOciLayout } from '../helpers/images.js';
import { assertIntact, bytesOf, startSession, withDigest } from '../helpers/oci-http.js';
import { scratch } from '../helpers/clients.js';
import { sluice } from '../helpers/sluice-cli.js';
import { digestOf } from '../../src/oci/digest.js';

test('parallel pushes of the same blob (monolithic and chunked) all succeed and leave one consistent blob', async () => {
  const reg = await startRegistry();
  try {
    const data = randomBytes(300_000);
    const d = digestOf(data);
    const mono = Array.from({ length: 6 }, (_, i) =>
      fetch(`${reg.url}/v2/par/r${i % 2}/blobs/uploads/?digest=${d}`, { method: 'POST', body: data }),
    );
    const chunked = Array.from({ length: 4 }, async (_, i) => {
      const loc = await startSession(reg.url, `par/r${i % 2}`);
      const p = await fetch(loc, { method: 'PATCH', body: data.subarray(0, 100_000) });
      assert.equal(p.status, 202);
      return fetch(withDigest(loc, d), {
        method: 'PUT',
        body: data.subarray(100_000),
        headers: { 'content-range': `100000-${data.length - 1}` },
      });
    });
    const results = await Promise.all([...mono, ...chunked]);
    for (const r of results) assert.equal(r.status, 201, await r.text());
    for (const repo of ['par/r0', 'par/r1']) {
      const g = await fetch(`${reg.url}/v2/${repo}/blobs/${d}`);
      assert.deepEqual(await bytesOf(g), data);
    }
    const files = await reg.files('docker/registry/v2');
    assert.deepEqual(
      files.filter((f) => f.startsWith('blobs/')),
      [`blobs/sha256/${d.slice(7, 9)}/${d.slice(7)}/data`],
    );
    assert.deepEqual(
      files.filter((f) => f.includes('_uploads') || f.includes('.tmp')),
      [],
    );
  } finally {
    await reg.close();
  }
});

test('parallel pushes of one digest move it into place once; the others find it there', async () => {
  const reg = await startRegistry();
  const driver = reg.ctx.driver;
  const move = driver.move.bind(driver);
  const moved: string[] = [];
  // Counts the storage moves into blobs/ (on S3 a server-side copy each) while the pushes race.
  driver.move = async (from: string, to: string) => {
    if (to.includes('/blobs/')) moved.push(to);
    return move(from, to);
  };
  try {
    const data = randomBytes(200_000);
    const d = digestOf(data);
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        fetch(`${reg.url}/v2/once/r${i}/blobs/uploads/?digest=${d}`, { method: 'POST', body: data }),
      ),
    );
    for (const r of results) assert.equal(r.status, 201, await r.text());
    assert.equal(moved.length, 1, moved.join('\n'));
    for (let i = 0; i < 8; i++)
      assert.deepEqual(await bytesOf(await fetch(`${reg.url}/v2/once/r${i}/blobs/${d}`)), data);
  } finally {
    driver.move = move;
    await reg.close();
  }
});

test('parallel PUTs of different manifests to one tag end with the tag on one of them, consistently', async () => {
  const reg = await startRegistry();
  try {
    const images = await Promise.all(Array.from({ length: 8 }, (_, i) => makeImage({ label: `racer-${i}` })));
    for (const img of images) {
      await pushBlob(reg.url, 'race/tag', img.config);
      for (const l of img.layers) await pushBlob(reg.url, 'race/tag', l);
    }
    const results = await Promise.all(
      images.map((img) => pushManifest(reg.url, 'race/tag', 'latest', img.manifest, img.mediaType)),
    );
    for (const r of results) assert.equal(r.status, 201);
    const g = await fetch(`${reg.url}/v2/race/tag/manifests/latest`);
    assert.equal(g.status, 200);
    const digest = g.headers.get('docker-content-digest')!;
    const winner = images.find((i) => i.digest === digest);
    assert.ok(winner, 'the tag points at one of the pushed manifests');
    assert.deepEqual(await bytesOf(g), winner.manifest);
    // Every pushed manifest remains a revision, reachable by digest.
    for (const img of images) assert.equal((await fetch(`${reg.url}/v2/race/tag/manifests/${img.digest}`)).status, 200);
    const tags = (await (await fetch(`${reg.url}/v2/race/tag/tags/list`)).json()) as { tags: string[] };
    assert.deepEqual(tags.tags, ['latest']);
    const files = await reg.files('docker/registry/v2');
    assert.deepEqual(
      files.filter((f) => f.includes('.tmp')),
      [],
    );
  } finally {
    await reg.close();
  }
});

test('parallel PATCHes of one session never interleave bytes', async () => {
  const reg = await startRegistry();
  try {
    const loc = await startSession(reg.url, 'race/session');
    const parts = Array.from({ length: 6 }, (_, i) => Buffer.alloc(50_000, 65 + i));
    const results = await Promise.all(parts.map((p) => fetch(loc, { method: 'PATCH', body: p })));
    for (const r of results) assert.equal(r.status, 202);
    const st = await fetch(loc);
    assert.equal(st.headers.get('range'), `0-${6 * 50_000 - 1}`);
    // The stored bytes are the parts in some order, each whole: check by trying the digest of the order the server saw.
    const file = `docker/registry/v2/repositories/race/session/_uploads/${new URL(loc).pathname.split('/').pop()!}/data`;
    const stored = (await reg.ctx.driver.getContent(file))!;
    for (let i = 0; i < 6; i++) {
      const seg = stored.subarray(i * 50_000, (i + 1) * 50_000);
      assert.ok(
        seg.every((b) => b === seg[0]),
        `segment ${i} is one part, not interleaved`,
      );
    }
    const put = await fetch(withDigest(loc, digestOf(stored)), { method: 'PUT' });
    assert.equal(put.status, 201);
  } finally {
    await reg.close();
  }
});

test('20 parallel sluice copy processes of images sharing layers, into one repository and into many, all succeed and every image pulls whole', async () => {
  const reg = await startRegistry();
  const work = await scratch('sluice-parallel-copy-');
  try {
    // Four images over one shared base layer (incompressible, so it is a real upload) and one layer each.
    const base = { 'base.bin': randomBytes(512 * 1024) };
    const images = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        makeImage({ label: `pc-${i}`, layers: [base, { 'own.txt': `image ${i}\n` }] }),
      ),
    );
    assert.equal(new Set(images.map((img) => img.layers[0]!.descriptor.digest)).size, 1);
    await writeOciLayout(
      work.dir,
      images.map((image, i) => ({ tag: `i${i}`, image })),
    );
    // Eight go to one repository under tags of their own, four copy one image to one tag of it, and eight
    // each to a repository of their own.
    const jobs = Array.from({ length: 20 }, (_, i) => {
      const n = i >= 8 && i < 12 ? 0 : i % 4;
      return {
        image: images[n]!,
        src: `oci:${work.dir}:i${n}`,
        repo: i < 12 ? 'together/app' : `apart/r${i}`,
        tag: i >= 8 && i < 12 ? 'same' : `t${i}`,
      };
    });
    const results = await Promise.all(
      jobs.map((j) => sluice(['copy', j.src, `docker://${reg.host}/${j.repo}:${j.tag}`])),
    );
    for (const [i, r] of results.entries()) assert.equal(r.code, 0, `copy ${i} exited ${r.code}: ${r.stderr}`);
    // The copy engine retries a 5xx, so a success alone would hide one: the registry's own count must have none.
    const statuses = (await reg.ctx.metrics.requests.get()).values.map(
      (v) => `${v.labels.method} ${v.labels.route} ${v.labels.status}`,
    );
    assert.deepEqual(
      statuses.filter((x) => / 5\d\d$/.test(x)),
      [],
    );
    for (const j of jobs) await assertIntact(reg.url, j.repo, j.tag, j.image);
    const tags = (await (await fetch(`${reg.url}/v2/together/app/tags/list`)).json()) as { tags: string[] };
    assert.deepEqual(
      tags.tags.sort(),
      [...new Set(jobs.filter((j) => j.repo === 'together/app').map((j) => j.tag))].sort(),
    );
  } finally {
    await reg.close();
    await work.cleanup();
  }
});
