import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { digestTag } from '../../src/oci/digest.js';
import { makeImage, makeMultiArch, pushImage, writeOciLayout } from '../helpers/images.js';
import { assertIntact, makeArtifact } from '../helpers/oci-http.js';
import { startRegistry } from '../helpers/registry.js';
import { scratch } from '../helpers/clients.js';
import { sluice, sluiceCopy } from '../helpers/sluice-cli.js';

test('--with-referrers brings referrers and cosign tags along; without it they stay behind', async () => {
  const a = await startRegistry();
  const b = await startRegistry();
  try {
    const idx = await makeMultiArch('signed');
    await pushImage(a.url, 'app', 'v1', idx);
    const subject = { mediaType: idx.mediaType, digest: idx.digest, size: idx.manifest.length };
    const sbom = makeArtifact({ artifactType: 'application/spdx+json', payload: '{"sbom":1}', subject });
    await pushImage(a.url, 'app', sbom.digest, sbom);
    const sig = makeArtifact({
      artifactType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      payload: '{"critical":{}}',
    });
    const sigTag = `${digestTag(idx.digest)}.sig`;
    await pushImage(a.url, 'app', sigTag, sig);

    const plain = await sluiceCopy(`docker://${a.host}/app:v1`, `docker://${b.host}/plain:v1`, ['--all']);
    assert.equal(plain.manifests.length, 4);
    assert.equal((await fetch(`${b.url}/v2/plain/manifests/${sigTag}`)).status, 404);

    const sum = await sluiceCopy(`docker://${a.host}/app:v1`, `docker://${b.host}/app:v1`, [
      '--all',
      '--with-referrers',
    ]);
    assert.equal(sum.digest, idx.digest);
    await assertIntact(b.url, 'app', 'v1', idx);
    await assertIntact(b.url, 'app', sbom.digest, sbom);
    await assertIntact(b.url, 'app', sigTag, sig);
    const refs = (await (await fetch(`${b.url}/v2/app/referrers/${idx.digest}`)).json()) as {
      manifests: { digest: string }[];
    };
    assert.deepEqual(
      refs.manifests.map((m) => m.digest),
      [sbom.digest],
    );
  } finally {
    await a.close();
    await b.close();
  }
});

test('429 with Retry-After and 503 answers are retried; --retry-times 0 gives up', async () => {
  const s = await scratch();
  const reg = await startRegistry();
  const target = new URL(reg.url);
  // A fault injector in front of a real registry: the first two blob uploads are refused.
  let faults = 0;
  let budget = 2;
  const proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'POST' && req.url?.includes('/blobs/uploads/') && budget > 0) {
      budget--;
      faults++;
      req.resume();
      res.writeHead(faults % 2 === 1 ? 429 : 503, { 'retry-after': '1', 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] }));
      return;
    }
    const up = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    req.pipe(up);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  const port = (proxy.address() as { port: number }).port;
  try {
    const img = await makeImage({ label: 'retry' });
    await writeOciLayout(join(s.dir, 'src'), [{ tag: 'v1', image: img }]);
    const sum = await sluiceCopy(`oci:${s.dir}/src:v1`, `docker://127.0.0.1:${port}/app:v1`, ['--jobs', '1']);
    assert.equal(sum.digest, img.digest);
    assert.equal(faults, 2);
    await assertIntact(reg.url, 'app', 'v1', img);

    budget = 1;
    const other = await makeImage({ label: 'no-retry' });
    await writeOciLayout(join(s.dir, 'src2'), [{ tag: 'v1', image: other }]);
    const r = await sluice(['copy', '--retry-times', '0', `oci:${s.dir}/src2:v1`, `docker://127.0.0.1:${port}/app:v2`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /TOOMANYREQUESTS|HTTP 429/);
  } finally {
    proxy.close();
    await reg.close();
    await s.cleanup();
  }
});
