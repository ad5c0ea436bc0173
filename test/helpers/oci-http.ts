import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { TestImage, TestIndex } from './images.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';

/** The first OCI error code of a response body (asserting it is the spec's error JSON). */
export async function errorCode(r: Response): Promise<string> {
  const text = await r.text();
  let body: { errors?: { code?: string; message?: string }[] };
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`status ${r.status}: body is not JSON: ${text.slice(0, 200)}`);
  }
  assert.ok(Array.isArray(body.errors) && body.errors.length > 0, `no errors list in ${text}`);
  assert.equal(typeof body.errors[0]!.message, 'string');
  return body.errors[0]!.code!;
}

/** The first OCI error of a response: code and message. */
export async function errorOf(r: Response): Promise<{ code: string; message: string }> {
  const body = (await r.json()) as { errors: { code: string; message: string }[] };
  return body.errors[0]!;
}

/** Response bytes. */
export async function bytesOf(r: Response): Promise<Buffer> {
  return Buffer.from(await r.arrayBuffer());
}

/** Asserts an image (or index with its images) is served byte for byte under `ref`. */
export async function assertIntact(
  url: string,
  repo: string,
  ref: string,
  image: TestImage | TestIndex,
): Promise<void> {
  const r = await fetch(`${url}/v2/${repo}/manifests/${ref}`, { headers: { accept: image.mediaType } });
  assert.equal(r.status, 200, `manifest ${repo}:${ref}`);
  assert.equal(r.headers.get('docker-content-digest'), image.digest);
  assert.deepEqual(await bytesOf(r), image.manifest);
  const images = 'images' in image ? image.images : [image];
  for (const img of images) {
    if ('images' in image) {
      const m = await fetch(`${url}/v2/${repo}/manifests/${img.digest}`, { headers: { accept: img.mediaType } });
      assert.equal(m.status, 200);
      assert.deepEqual(await bytesOf(m), img.manifest);
    }
    for (const b of [img.config, ...img.layers]) {
      const g = await fetch(`${url}/v2/${repo}/blobs/${b.descriptor.digest}`);
      assert.equal(g.status, 200, `blob ${b.descriptor.digest}`);
      assert.deepEqual(await bytesOf(g), b.bytes);
    }
  }
}

/** A raw HTTP response collected by `rawRequest`. */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Sends a request with node:http, for methods and paths fetch would normalise (dot segments). */
export function rawRequest(
  url: string,
  method: string,
  path: string,
  body?: Buffer,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        method,
        path,
        headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Starts an upload session and returns its absolute Location URL. */
export async function startSession(url: string, repo: string): Promise<string> {
  const r = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(r.status, 202);
  const loc = r.headers.get('location');
  assert.ok(loc);
  return new URL(loc, url).toString();
}

/** Appends `?digest=` (or `&digest=`) to an upload location. */
export function withDigest(location: string, digest: string): string {
  const u = new URL(location);
  u.searchParams.set('digest', digest);
  return u.toString();
}

/** An artifact manifest (OCI 1.1): empty config, one layer, artifactType, optional subject. */
export function makeArtifact(opts: {
  artifactType: string;
  payload: string;
  subject?: { digest: string; size: number; mediaType: string };
  annotations?: Record<string, string>;
}): TestImage {
  const empty = Buffer.from('{}');
  const layer = Buffer.from(opts.payload);
  const config = { bytes: empty, descriptor: { mediaType: MediaType.OciEmpty, digest: digestOf(empty), size: 2 } };
  const layers = [
    { bytes: layer, descriptor: { mediaType: 'text/plain', digest: digestOf(layer), size: layer.length } },
  ];
  const doc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: opts.artifactType,
    config: config.descriptor,
    layers: layers.map((l) => l.descriptor),
  };
  if (opts.subject) doc.subject = opts.subject;
  if (opts.annotations) doc.annotations = opts.annotations;
  const manifest = Buffer.from(JSON.stringify(doc));
  return {
    manifest,
    digest: digestOf(manifest),
    mediaType: MediaType.OciManifest,
    config,
    layers,
    platform: { os: 'unknown', architecture: 'unknown' },
  };
}
