import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { errorCode } from '../helpers/oci-http.js';

/** Follows Link headers from `first`, collecting every page's list. */
async function walk(
  url: string,
  first: string,
  key: 'tags' | 'repositories',
): Promise<{ pages: string[][]; links: string[] }> {
  const pages: string[][] = [];
  const links: string[] = [];
  let next: string | null = first;
  while (next) {
    const r: Response = await fetch(new URL(next, url));
    assert.equal(r.status, 200);
    const body = (await r.json()) as Record<string, string[]>;
    pages.push(body[key]!);
    const link = r.headers.get('link');
    if (!link) break;
    links.push(link);
    const m = /^<([^>]+)>;\s*rel="next"$/.exec(link);
    assert.ok(m, `malformed Link ${link}`);
    next = m[1]!;
  }
  return { pages, links };
}

test('tags list: sorted, paginated with n and last, Link header to the next page', async () => {
  const reg = await startRegistry();
  try {
    const img = await makeImage();
    const tags = ['v1', 'v10', 'v2', 'latest', 'a', 'b-c', 'Z'];
    for (const t of tags) await pushImage(reg.url, 'l/tags', t, img);
    const sorted = [...tags].sort();
    const all = await (await fetch(`${reg.url}/v2/l/tags/tags/list`)).json();
    assert.deepEqual(all, { name: 'l/tags', tags: sorted });

    const { pages, links } = await walk(reg.url, '/v2/l/tags/tags/list?n=3', 'tags');
    assert.deepEqual(pages, [sorted.slice(0, 3), sorted.slice(3, 6), sorted.slice(6)]);
    assert.equal(links[0], `</v2/l/tags/tags/list?n=3&last=${sorted[2]}>; rel="next"`);

    const after = (await (await fetch(`${reg.url}/v2/l/tags/tags/list?last=latest`)).json()) as { tags: string[] };
    assert.deepEqual(
      after.tags,
      sorted.filter((t) => t > 'latest'),
    );
    const exact = await fetch(`${reg.url}/v2/l/tags/tags/list?n=${tags.length}`);
    assert.equal(exact.headers.get('link'), null);
    assert.equal(((await exact.json()) as { tags: string[] }).tags.length, tags.length);
    const zero = await fetch(`${reg.url}/v2/l/tags/tags/list?n=0`);
    assert.equal(zero.status, 200);
    assert.deepEqual(((await zero.json()) as { tags: string[] }).tags, []);
    const bad = await fetch(`${reg.url}/v2/l/tags/tags/list?n=-1`);
    assert.equal(bad.status, 400);
    assert.equal(await errorCode(bad), 'PAGINATION_NUMBER_INVALID');
  } finally {
    await reg.close();
  }
});

test('tags list of an unknown repository is NAME_UNKNOWN', async () => {
  const reg = await startRegistry();
  try {
    const r = await fetch(`${reg.url}/v2/nobody/here/tags/list`);
    assert.equal(r.status, 404);
    assert.equal(await errorCode(r), 'NAME_UNKNOWN');
  } finally {
    await reg.close();
  }
});

test('catalog: every repository, nested names included, paginated with Link', async () => {
  const reg = await startRegistry();
  try {
    const img = await makeImage();
    const names = ['alpha', 'team/app', 'team/app/sub', 'team/b', 'zeta/x/y/z', 'library/busybox'];
    for (const n of names) await pushImage(reg.url, n, 'v1', img);
    const sorted = [...names].sort();
    const all = await (await fetch(`${reg.url}/v2/_catalog`)).json();
    assert.deepEqual(all, { repositories: sorted });
    const { pages, links } = await walk(reg.url, '/v2/_catalog?n=4', 'repositories');
    assert.deepEqual(pages, [sorted.slice(0, 4), sorted.slice(4)]);
    assert.equal(links[0], `</v2/_catalog?n=4&last=${encodeURIComponent(sorted[3]!)}>; rel="next"`);
    const after = (await (await fetch(`${reg.url}/v2/_catalog?last=team/app`)).json()) as { repositories: string[] };
    assert.deepEqual(
      after.repositories,
      sorted.filter((n) => n > 'team/app'),
    );
  } finally {
    await reg.close();
  }
});
