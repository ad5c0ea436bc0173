import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { needTools, runOk } from '../helpers/tools.js';
import { scratch } from '../helpers/clients.js';
import { signImage } from '../../src/sign/sign.js';
import { verifyImage } from '../../src/sign/verify-image.js';
import { trustedKeyFromPem } from '../../src/sign/crypto.js';
import { signatureTag } from '../../src/sign/discover.js';
import { VerificationCache } from '../../src/sign/cache.js';
import { SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE } from '../../src/sign/types.js';

// Debian's skopeo cannot sign or verify sigstore signatures, but with use-sigstore-attachments it
// reads a `.sig` manifest (containers/image's own parser), carries each signature along and writes
// its own `.sig` manifest at the destination: a real client reading what Sluice wrote, and Sluice
// verifying what that client wrote.
test('skopeo carries Sluice signatures: it parses the .sig manifest, and Sluice verifies the .sig manifest skopeo wrote', async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const { dir, cleanup } = await scratch('sluice-sign-skopeo-');
  const reg = await startRegistry();
  t.after(async () => {
    await reg.close();
    await cleanup();
  });
  const img = await makeImage({ label: 'skopeo-signed' });
  await pushImage(reg.url, 'upstream/app', '1', img);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pub = trustedKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'k.pub');
  await signImage(`docker://${reg.host}/upstream/app:1`, privateKey, { transport: { tlsVerify: false } });

  const rd = join(dir, 'registries.d');
  await mkdir(rd);
  await writeFile(join(rd, 'sluice.yaml'), `docker:\n  ${reg.host}:\n    use-sigstore-attachments: true\n`);
  const common = ['--registries.d', rd, '--src-tls-verify=false'];
  await runOk('skopeo', [
    'copy',
    ...common,
    '--dest-tls-verify=false',
    `docker://${reg.host}/upstream/app:1`,
    `docker://${reg.host}/mirror/app:1`,
  ]);
  await runOk('skopeo', ['copy', ...common, `docker://${reg.host}/upstream/app:1`, `dir:${join(dir, 'd')}`]);

  // What skopeo read: the payload and signature annotation, byte for byte (its dir: signature format).
  const raw = await readFile(join(dir, 'd', 'signature-1'));
  assert.equal(raw.subarray(0, 15).toString('latin1'), '\x00sigstore-json\n');
  const carried = JSON.parse(raw.subarray(15).toString()) as {
    mimeType: string;
    payload: string;
    annotations: Record<string, string>;
  };
  assert.equal(carried.mimeType, SIMPLE_SIGNING_MEDIA_TYPE);
  const ours = (await (
    await fetch(`${reg.url}/v2/upstream/app/manifests/${signatureTag(img.digest)}`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    })
  ).json()) as {
    layers: { digest: string; annotations: Record<string, string> }[];
  };
  const payload = Buffer.from(
    await (await fetch(`${reg.url}/v2/upstream/app/blobs/${ours.layers[0]!.digest}`)).arrayBuffer(),
  );
  assert.deepEqual(Buffer.from(carried.payload, 'base64'), payload);
  assert.equal(carried.annotations[SIGNATURE_ANNOTATION], ours.layers[0]!.annotations[SIGNATURE_ANNOTATION]);

  // What skopeo wrote: a .sig manifest of its own making in the mirror, which Sluice verifies.
  const mirror = `docker://${reg.host}/mirror/app:1`;
  const opts = { transport: { tlsVerify: false }, keys: [pub], cache: new VerificationCache() };
  const plain = await verifyImage(mirror, opts);
  assert.equal(plain.decision.allowed, false);
  assert.match(
    plain.decision.summary,
    new RegExp(`signed for ${reg.host}/upstream/app:1, this is ${reg.host}/mirror/app:1`),
  );
  const remapped = await verifyImage(mirror, {
    ...opts,
    identityRule: { type: 'remapIdentity', prefix: `${reg.host}/mirror`, signedPrefix: `${reg.host}/upstream` },
  });
  assert.equal(remapped.decision.allowed, true, remapped.decision.summary);
});
