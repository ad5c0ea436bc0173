import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf, digestTag, type Digest } from '../../src/oci/digest.js';
import { findSignatures, MAX_SIGNATURE_BYTES, verifyImage } from '../../src/sign/index.js';
import { BUNDLE_MEDIA_TYPE, SIMPLE_SIGNING_MEDIA_TYPE } from '../../src/sign/types.js';
import { openSource } from '../../src/transport/index.js';
import { DirectoryFiles } from '../../src/transport/layout-files.js';
import { LayoutSource } from '../../src/transport/oci-layout.js';
import type { Readable } from 'node:stream';
import { makeImage, pushBlob, pushImage, pushManifest, writeOciLayout } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';

const MiB = 1024 * 1024;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const HUGE = 8 * MiB;

/** A cosign `.sig` manifest padded with an 8 MiB annotation: valid, and far over the signature bound. */
function hugeSignatureManifest(config: Buffer, payload: Buffer): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers: [
        {
          mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
          digest: digestOf(payload),
          size: payload.length,
          annotations: { 'dev.cosignproject.cosign/signature': 'AAAA' },
        },
      ],
      annotations: { pad: 'x'.repeat(HUGE) },
    }),
  );
}

/**
 * A pass-through proxy in front of a registry that can drop Content-Length from the answers to `paths`
 * (so they go out chunked): a registry that does not say how large its answer is.
 */
async function startProxy(
  target: string,
  stripLength: () => boolean,
  paths = /\/manifests\//,
): Promise<{ host: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
      (up) => {
        const headers = { ...up.headers };
        if (stripLength() && paths.test(req.url ?? '')) delete headers['content-length'];
        res.writeHead(up.statusCode ?? 502, headers);
        up.pipe(res);
        // The client hanging up mid-answer is what a bounded read does; stop sending then.
        res.on('close', () => up.destroy());
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Signature discovery for `digest` in a registry repository (`host/repo`). */
async function discoverAt(repository: string, digest: Digest): ReturnType<typeof findSignatures> {
  const src = await openSource(`docker://${repository}@${digest}`, { tlsVerify: false });
  try {
    return await findSignatures(src, digest);
  } finally {
    await src.close();
  }
}

/** A layout directory that counts the bytes handed out per file, read whole or streamed. */
class CountingFiles extends DirectoryFiles {
  readonly bytes = new Map<string, number>();
  private add(p: string, n: number): void {
    this.bytes.set(p, (this.bytes.get(p) ?? 0) + n);
  }
  override async read(p: string): Promise<Buffer | undefined> {
    const b = await super.read(p);
    if (b) this.add(p, b.length);
    return b;
  }
  override async stream(p: string): Promise<Readable> {
    const s = await super.stream(p);
    s.on('data', (c: Buffer) => this.add(p, c.length));
    return s;
  }
}

test('a huge signature manifest at a registry is refused by its Content-Length unread, and one sent without a length is cut at the bound', async () => {
  const reg = await startRegistry({ limits: { manifestbytes: 16 * MiB } });
  const stripped = { on: false };
  const proxy = await startProxy(reg.url, () => stripped.on);
  try {
    const img = await makeImage({ label: 'bounded' });
    await pushImage(reg.url, 'app/x', '1', img);
    const config = Buffer.from('{}');
    const payload = Buffer.from('{"critical":{}}');
    await pushBlob(reg.url, 'app/x', config);
    await pushBlob(reg.url, 'app/x', payload);
    const sigTag = `${digestTag(img.digest)}.sig`;
    const huge = hugeSignatureManifest(config, payload);
    assert.ok(huge.length > HUGE);
    const put = await pushManifest(reg.url, 'app/x', sigTag, huge, OCI_MANIFEST);
    assert.equal(put.status, 201, await put.text());

    const discover = () => discoverAt(`${proxy.host}/app/x`, img.digest as Digest);
    const byLength = (await discover()).candidates.find((c) => c.where === `tag ${sigTag}`);
    assert.ok(byLength?.problem, 'the huge .sig manifest is reported');
    assert.match(
      byLength.problem,
      new RegExp(
        `manifest ${sigTag} is ${huge.length} bytes \\(Content-Length\\), over the ${MAX_SIGNATURE_BYTES}-byte bound; not read`,
      ),
    );

    stripped.on = true;
    const cut = (await discover()).candidates.find((c) => c.where === `tag ${sigTag}`);
    assert.ok(cut?.problem);
    const m = /is longer than the (\d+)-byte bound; stopped reading after (\d+) bytes/.exec(cut.problem);
    assert.ok(m, cut.problem);
    assert.equal(Number(m[1]), MAX_SIGNATURE_BYTES);
    // Held in memory: the bound plus at most one network chunk, never the 8 MiB.
    assert.ok(Number(m[2]) < MAX_SIGNATURE_BYTES + 256 * 1024, `read ${m[2]} bytes`);
  } finally {
    await proxy.close();
    await reg.close();
  }
});

test('a referrers list over the bound is refused at the source (by Content-Length, or cut when sent without one), and the .sig tag is still looked at', async () => {
  const reg = await startRegistry();
  const stripped = { on: false };
  const proxy = await startProxy(reg.url, () => stripped.on, /\/referrers\//);
  try {
    const img = await makeImage({ label: 'many-referrers' });
    await pushImage(reg.url, 'app/r', '1', img);
    const empty = Buffer.from('{}');
    const layer = Buffer.from('not a bundle');
    await pushBlob(reg.url, 'app/r', empty);
    await pushBlob(reg.url, 'app/r', layer);
    // Four referrers with 300 KB annotations each: the registry's referrers list carries the annotations, so it passes 1 MiB.
    for (let i = 0; i < 4; i++) {
      const m = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          artifactType: BUNDLE_MEDIA_TYPE,
          config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(empty), size: empty.length },
          layers: [{ mediaType: BUNDLE_MEDIA_TYPE, digest: digestOf(layer), size: layer.length }],
          subject: { mediaType: img.mediaType, digest: img.digest, size: img.manifest.length },
          annotations: { pad: String(i).repeat(300_000) },
        }),
      );
      const put = await pushManifest(reg.url, 'app/r', digestOf(m), m, OCI_MANIFEST);
      assert.equal(put.status, 201, await put.text());
    }
    const discover = () => discoverAt(`${proxy.host}/app/r`, img.digest as Digest);
    const listed = await discover();
    const byLength = listed.candidates.find((c) => c.where === `referrers of ${img.digest}`);
    assert.match(
      byLength?.problem ?? '',
      new RegExp(
        `cannot list referrers: .*referrers of ${img.digest} is \\d+ bytes \\(Content-Length\\), over the ${MAX_SIGNATURE_BYTES}-byte bound; not read`,
      ),
    );
    assert.ok(listed.searched.includes(`tag ${digestTag(img.digest)}.sig`), 'the .sig tag is still looked at');
    stripped.on = true;
    const cut = (await discover()).candidates.find((c) => c.where === `referrers of ${img.digest}`);
    const m = /is longer than the (\d+)-byte bound; stopped reading after (\d+) bytes/.exec(cut?.problem ?? '');
    assert.ok(m, cut?.problem);
    assert.ok(Number(m[2]) < MAX_SIGNATURE_BYTES + 256 * 1024, `read ${m[2]} bytes`);
  } finally {
    await proxy.close();
    await reg.close();
  }
});

test('a huge signature manifest in an OCI layout or oci-archive is refused by its descriptor or its file size, whichever says so first', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-bounded-'));
  try {
    const img = await makeImage({ label: 'bounded-layout' });
    const layout = join(dir, 'layout');
    await writeOciLayout(layout, [{ tag: '1', image: img }]);
    const config = Buffer.from('{}');
    const payload = Buffer.from('{"critical":{}}');
    const huge = hugeSignatureManifest(config, payload);
    for (const b of [config, payload, huge]) await writeFile(join(layout, 'blobs/sha256', digestOf(b).slice(7)), b);
    const sigTag = `${digestTag(img.digest)}.sig`;
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
      manifests: Record<string, unknown>[];
    };
    const entry = {
      mediaType: OCI_MANIFEST,
      digest: digestOf(huge),
      size: huge.length,
      annotations: { 'org.opencontainers.image.ref.name': sigTag },
    };
    const writeIndex = (size: number) =>
      writeFile(
        join(layout, 'index.json'),
        JSON.stringify({ ...index, manifests: [...index.manifests, { ...entry, size }] }),
      );
    const problemAt = async (ref: string) => {
      const r = await verifyImage(ref, { keys: [] });
      return r.discovery.candidates.find((c) => c.where === `tag ${sigTag}`)?.problem ?? '';
    };

    await writeIndex(huge.length);
    assert.match(
      await problemAt(`oci:${layout}:1`),
      new RegExp(
        `is ${huge.length} bytes \\(its index\\.json descriptor\\), over the ${MAX_SIGNATURE_BYTES}-byte bound`,
      ),
    );
    // index.json understating the size does not get the file read: its size on disk refuses it.
    await writeIndex(500);
    assert.match(
      await problemAt(`oci:${layout}:1`),
      new RegExp(`is ${huge.length} bytes \\(its file size\\), over the ${MAX_SIGNATURE_BYTES}-byte bound`),
    );

    // A referrer whose index.json entry understates an oversized file: listing referrers reads it only up to a bound.
    const referrer = Buffer.from(
      JSON.stringify({
        ...JSON.parse(huge.toString('utf8')),
        subject: { mediaType: img.mediaType, digest: img.digest, size: img.manifest.length },
        annotations: { pad: 'y'.repeat(2 * HUGE) },
      }),
    );
    await writeFile(join(layout, 'blobs/sha256', digestOf(referrer).slice(7)), referrer);
    const withSig = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as typeof index;
    await writeFile(
      join(layout, 'index.json'),
      JSON.stringify({
        ...withSig,
        manifests: [...withSig.manifests, { mediaType: OCI_MANIFEST, digest: digestOf(referrer), size: 500 }],
      }),
    );
    const counted = new CountingFiles(layout);
    const source = await LayoutSource.open(counted, '1');
    const found = await findSignatures(source, img.digest as Digest);
    await source.close();
    assert.ok(referrer.length > 16 * MiB);
    const read = counted.bytes.get(`blobs/sha256/${digestOf(referrer).slice(7)}`) ?? 0;
    assert.ok(read <= 5 * MiB, `read ${read} bytes of a ${referrer.length}-byte referrer`);
    assert.ok(!found.candidates.some((c) => c.where.includes(digestOf(referrer))), 'not taken for a referrer');

    const archive = join(dir, 'image.tar');
    execFileSync('tar', ['-cf', archive, '-C', layout, '.']);
    assert.match(
      await problemAt(`oci-archive:${archive}:1`),
      /is \d+ bytes \(its file size\), over the 1048576-byte bound/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
