import { createReadStream } from 'node:fs';
import { request } from 'undici';
import type { DataFile } from './data.js';

/** Throws with the response text when a status is not the expected one. */
async function expectStatus(
  what: string,
  res: { statusCode: number; body: { text(): Promise<string> } },
  ...ok: number[]
): Promise<void> {
  if (!ok.includes(res.statusCode)) {
    const text = await res.body.text().catch(() => '');
    throw new Error(`${what}: HTTP ${res.statusCode} ${text.slice(0, 300)}`);
  }
}

function headerOf(h: Record<string, string | string[] | undefined>, name: string): string {
  const v = h[name];
  return Array.isArray(v) ? v[0]! : (v ?? '');
}

function withDigest(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

/** Starts an upload session; returns its absolute Location. */
export async function startUpload(base: string, repo: string): Promise<string> {
  const res = await request(`${base}/v2/${repo}/blobs/uploads/`, {
    method: 'POST',
    headers: { 'content-length': '0' },
  });
  await expectStatus('POST upload', res, 202);
  await res.body.dump();
  return new URL(headerOf(res.headers, 'location'), base).toString();
}

/** Pushes a file as one blob: POST, then PUT `?digest=` with the whole body. */
export async function pushMonolithic(base: string, repo: string, file: DataFile): Promise<void> {
  const location = await startUpload(base, repo);
  const res = await request(withDigest(location, file.digest), {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(file.size) },
    body: createReadStream(file.path, { highWaterMark: 1 << 20 }),
  });
  await expectStatus('PUT blob', res, 201);
  await res.body.dump();
}

/** Pushes a file in PATCH chunks of `chunkSize`, then an empty PUT `?digest=`. */
export async function pushChunked(base: string, repo: string, file: DataFile, chunkSize: number): Promise<void> {
  let location = await startUpload(base, repo);
  for (let start = 0; start < file.size; start += chunkSize) {
    const end = Math.min(file.size, start + chunkSize) - 1;
    const res = await request(location, {
      method: 'PATCH',
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(end - start + 1),
        'content-range': `${start}-${end}`,
      },
      body: createReadStream(file.path, { start, end, highWaterMark: 1 << 20 }),
    });
    await expectStatus('PATCH chunk', res, 202);
    await res.body.dump();
    location = new URL(headerOf(res.headers, 'location'), base).toString();
  }
  const res = await request(withDigest(location, file.digest), { method: 'PUT', headers: { 'content-length': '0' } });
  await expectStatus('PUT blob', res, 201);
  await res.body.dump();
}

/** Pushes small bytes as a blob. */
export async function pushBytes(base: string, repo: string, bytes: Buffer, digest: string): Promise<void> {
  const location = await startUpload(base, repo);
  const res = await request(withDigest(location, digest), {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
    body: bytes,
  });
  await expectStatus('PUT blob', res, 201);
  await res.body.dump();
}

/** Streams a blob and discards it; resolves with the number of bytes read (checked against `size`). */
export async function pullBlob(base: string, repo: string, digest: string, size: number): Promise<number> {
  const res = await request(`${base}/v2/${repo}/blobs/${digest}`, { method: 'GET' });
  await expectStatus('GET blob', res, 200);
  let n = 0;
  for await (const chunk of res.body) n += (chunk as Buffer).length;
  if (n !== size) throw new Error(`GET blob ${digest}: read ${n} bytes, expected ${size}`);
  return n;
}

/** GETs a manifest; resolves with its bytes and the digest the server announced. */
export async function getManifest(
  base: string,
  repo: string,
  reference: string,
  accept: string,
): Promise<{ bytes: Buffer; digest: string }> {
  const res = await request(`${base}/v2/${repo}/manifests/${reference}`, { method: 'GET', headers: { accept } });
  await expectStatus(`GET manifest ${repo}:${reference}`, res, 200);
  const bytes = Buffer.from(await res.body.arrayBuffer());
  return { bytes, digest: headerOf(res.headers, 'docker-content-digest') };
}

/** PUTs a manifest under a tag. */
export async function putManifest(
  base: string,
  repo: string,
  tag: string,
  bytes: Buffer,
  mediaType: string,
): Promise<void> {
  const res = await request(`${base}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
    body: bytes,
  });
  await expectStatus('PUT manifest', res, 201);
  await res.body.dump();
}

/** Follows a paginated list (`Link: <...>; rel="next"`) to its end; resolves with the entries and page count. */
export async function walkPages(
  base: string,
  firstPath: string,
  field: 'tags' | 'repositories',
): Promise<{ entries: number; pages: number }> {
  let next: string | undefined = firstPath;
  let entries = 0;
  let pages = 0;
  while (next) {
    const res = await request(new URL(next, base).toString(), { method: 'GET' });
    await expectStatus(`GET ${next}`, res, 200);
    const json = (await res.body.json()) as Record<string, string[] | null>;
    entries += json[field]?.length ?? 0;
    pages++;
    const link = headerOf(res.headers, 'link');
    const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
    next = m ? m[1] : undefined;
  }
  return { entries, pages };
}
