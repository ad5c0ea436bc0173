import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { digestOf, type Digest } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { buildPayload, KeyError, signatureTag, trustedKeyFromPem, verifyImage } from '../../src/sign/index.js';
import { SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE } from '../../src/sign/types.js';
import { makeImage, pushBlob, pushImage, pushManifest } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';

const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();

/** Pushes a cosign `.sig` manifest for `digest` whose layers carry the given signature annotations over one payload. */
async function pushSig(
  url: string,
  repo: string,
  digest: Digest,
  payload: Buffer,
  signatures: string[],
): Promise<number> {
  const config = Buffer.from('{}');
  await pushBlob(url, repo, payload);
  await pushBlob(url, repo, config);
  const layer = (s: string) => ({
    mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
    digest: digestOf(payload),
    size: payload.length,
    annotations: { [SIGNATURE_ANNOTATION]: s },
  });
  const doc = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: digestOf(config), size: config.length },
    layers: signatures.map(layer),
  };
  const bytes = Buffer.from(JSON.stringify(doc));
  const r = await pushManifest(url, repo, signatureTag(digest), bytes, MediaType.OciManifest);
  return r.status;
}

test('key and format confusions against a P-256 key are each refused with a reason: RSA, P-384, Ed25519, malformed and 900 KB signatures', async () => {
  const reg = await startRegistry();
  try {
    const img = await makeImage({ label: 'confusion' });
    await pushImage(reg.url, 'conf/app', '1', img);
    const payload = buildPayload(`${reg.host}/conf/app:1`, img.digest);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
    const ed = generateKeyPairSync('ed25519').privateKey;
    const signatures = [
      sign('sha256', payload, rsa).toString('base64'),
      sign('sha384', payload, p384).toString('base64'),
      sign(null, payload, ed).toString('base64'),
      'not base64 at all!',
      Buffer.from('30440220').toString('base64'),
      randomBytes(675 * 1024).toString('base64'),
    ];
    assert.equal(await pushSig(reg.url, 'conf/app', img.digest, payload, signatures), 201);
    const trusted = trustedKeyFromPem(pem(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey), 'p256');
    const r = await verifyImage(`docker://${reg.host}/conf/app:1`, {
      keys: [trusted],
      transport: { tlsVerify: false },
    });
    assert.equal(r.decision.allowed, false);
    const verdicts = r.decision.results[0]!.signatures;
    assert.equal(verdicts.length, signatures.length);
    assert.ok(verdicts.every((v) => !v.accepted));
    assert.match(verdicts[0]!.reason, /signed by another key/);
    assert.match(verdicts[1]!.reason, /signed by another key/);
    assert.match(verdicts[2]!.reason, /signed by another key/);
    assert.match(verdicts[3]!.reason, /missing or not base64/);
    assert.match(verdicts[4]!.reason, /signed by another key/);
    assert.match(verdicts[5]!.reason, /missing or not base64/);
    // Keys of other kinds, or no key at all, are refused as keys before any signature is looked at.
    assert.throws(
      () => trustedKeyFromPem('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', 'broken'),
      KeyError,
    );
    assert.throws(() => trustedKeyFromPem('not a key', 'text'), KeyError);
  } finally {
    await reg.close();
  }
});

test('a 1,000-layer .sig manifest is read up to its signature bound and refused, with the rest reported unread', async () => {
  const reg = await startRegistry();
  try {
    const img = await makeImage({ label: 'many-layers' });
    await pushImage(reg.url, 'conf/many', '1', img);
    const payload = buildPayload(`${reg.host}/conf/many:1`, img.digest);
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const forged = sign('sha256', payload, generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey).toString(
      'base64',
    );
    assert.equal(
      await pushSig(
        reg.url,
        'conf/many',
        img.digest,
        payload,
        Array.from({ length: 1000 }, () => forged),
      ),
      201,
    );
    const r = await verifyImage(`docker://${reg.host}/conf/many:1`, {
      keys: [trustedKeyFromPem(pem(key.publicKey), 'p256')],
      transport: { tlsVerify: false },
    });
    assert.equal(r.decision.allowed, false);
    const verdicts = r.decision.results[0]!.signatures;
    assert.equal(verdicts.length, 257);
    assert.match(verdicts.at(-1)!.reason, /744 more signatures not read \(over 256\)/);
  } finally {
    await reg.close();
  }
});
