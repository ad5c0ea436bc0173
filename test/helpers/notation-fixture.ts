import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { digestOf } from '../../src/oci/digest.js';
import { pushBlob, pushManifest } from './images.js';

// notation-go's own test data (test/sign/fixtures/notation): an amd64 alpine manifest it signed, with its JWS and
// COSE envelopes, and the wabbit-networks certificate that did not sign it.
const FIX = fileURLToPath(new URL('../../../test/sign/fixtures/notation/', import.meta.url));
const BLOBS = join(FIX, 'oci-layout/blobs/sha256');
/** The hex of the manifest notation-go signed. */
export const NOTATION_MANIFEST_HEX = '19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0';
const MT = 'application/vnd.oci.image.manifest.v1+json';

/** Pushes the signed alpine image as repo:tag with its blobs, and (unless `signed` is false) both envelopes as referrers, as `notation sign` attaches them. */
export async function pushSignedAlpine(
  url: string,
  repo: string,
  tag: string,
  signed = true,
): Promise<{ manifest: Buffer }> {
  const manifest = await readFile(join(BLOBS, NOTATION_MANIFEST_HEX));
  const doc = JSON.parse(manifest.toString()) as { config: { digest: string }; layers: { digest: string }[] };
  for (const d of [doc.config.digest, ...doc.layers.map((l) => l.digest)])
    await pushBlob(url, repo, await readFile(join(BLOBS, d.slice(7))));
  assert.equal((await pushManifest(url, repo, tag, manifest, MT)).status, 201);
  if (!signed) return { manifest };
  const empty = Buffer.from('{}');
  await pushBlob(url, repo, empty);
  for (const [file, mediaType] of [
    ['jws_signature.sig', 'application/jose+json'],
    ['cose_signature.sig', 'application/cose'],
  ] as const) {
    const env = await readFile(join(FIX, file));
    await pushBlob(url, repo, env);
    const sig = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT,
        artifactType: 'application/vnd.cncf.notary.signature',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(empty), size: 2 },
        layers: [{ mediaType, digest: digestOf(env), size: env.length }],
        subject: { mediaType: MT, digest: digestOf(manifest), size: manifest.length },
      }),
    );
    assert.equal((await pushManifest(url, repo, digestOf(sig), sig, MT)).status, 201);
  }
  return { manifest };
}

/** Writes two notation trust stores under dir (notation's layout, truststore/x509/ca/<name>/): `alpine` holds the signer's certificate, `wabbit-networks` one that did not sign. */
export async function notationTrustStores(dir: string): Promise<{ alpine: string; wabbit: string }> {
  const jws = JSON.parse((await readFile(join(FIX, 'jws_signature.sig'))).toString()) as { header: { x5c: string[] } };
  const alpine = join(dir, 'truststore/x509/ca/alpine');
  const wabbit = join(dir, 'truststore/x509/ca/wabbit-networks');
  await mkdir(alpine, { recursive: true });
  await mkdir(wabbit, { recursive: true });
  await writeFile(
    join(alpine, 'alpine.crt'),
    new X509Certificate(Buffer.from(jws.header.x5c[0]!, 'base64')).toString(),
  );
  await writeFile(join(wabbit, 'wabbit-networks.io.crt'), await readFile(join(FIX, 'wabbit-networks.io.crt')));
  return { alpine, wabbit };
}
