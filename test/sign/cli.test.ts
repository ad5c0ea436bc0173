import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeImage, pushImage, type TestImage } from '../helpers/images.js';
import { sluice } from '../helpers/sluice-cli.js';
import { decryptPrivateKey } from '../../src/sign/keys.js';
import { signatureTag } from '../../src/sign/discover.js';

let reg: TestRegistry;
let dir: string;
let img: TestImage;
const PW = { COSIGN_PASSWORD: 'correct horse' };

before(async () => {
  reg = await startRegistry();
  dir = await mkdtemp(join(tmpdir(), 'sluice-sign-cli-'));
  img = await makeImage({ label: 'cli' });
  await pushImage(reg.url, 'cli/app', 'v1', img);
});
after(async () => {
  await reg?.close();
  await rm(dir, { recursive: true, force: true });
});

const image = () => `docker://${reg.host}/cli/app:v1`;

test('key generate writes a cosign key pair (password from COSIGN_PASSWORD), refuses to overwrite it, and the key decrypts', async () => {
  const prefix = join(dir, 'signer');
  const r = await sluice(['key', 'generate', '--output-key-prefix', prefix], PW);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Public key written to .*signer\.pub \(SHA256:/);
  const priv = await readFile(`${prefix}.key`, 'utf8');
  assert.match(priv, /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
  assert.equal((await stat(`${prefix}.key`)).mode & 0o777, 0o600);
  assert.match(await readFile(`${prefix}.pub`, 'utf8'), /^-----BEGIN PUBLIC KEY-----/);
  const doc = JSON.parse(Buffer.from(priv.split('\n').slice(1, -2).join(''), 'base64').toString());
  assert.deepEqual(doc.kdf.params, { N: 32768, r: 8, p: 1 });
  assert.equal(doc.cipher.name, 'nacl/secretbox');
  assert.equal((await decryptPrivateKey(priv, 'correct horse')).asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const again = await sluice(['key', 'generate', '--output-key-prefix', prefix], PW);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^sluice: .*signer\.key exists: remove it or pass --force\n$/);
  // Without a password source and without a terminal there is nothing to ask: one line, exit 1.
  const noPw = await sluice(['key', 'generate', '--output-key-prefix', join(dir, 'nopw')], {
    COSIGN_PASSWORD: undefined as unknown as string,
  });
  assert.equal(noPw.code, 1);
  assert.match(noPw.stderr, /^sluice: no password: set COSIGN_PASSWORD, give --password-file, or run on a terminal\n$/);
});

test('sign then verify on the command line; a wrong key exits 1 with one line naming the requirement and key', async () => {
  const k = join(dir, 'signer');
  const s = await sluice(['sign', '--key', `${k}.key`, '--tls-verify=false', image()], PW);
  assert.equal(s.code, 0, s.stderr);
  assert.match(
    s.stdout,
    new RegExp(`Signed ${img.digest} as ${reg.host}/cli/app:v1 with SHA256:.*: tag ${signatureTag(img.digest)}`),
  );
  const v = await sluice(['verify', '--key', `${k}.pub`, '--tls-verify=false', image()]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /: verified\n/);
  assert.match(v.stdout, /ok {2}tag sha256-[0-9a-f]+\.sig: signed by .*signer\.pub/);

  const other = join(dir, 'other');
  assert.equal((await sluice(['key', 'generate', '--output-key-prefix', other], PW)).code, 0);
  const bad = await sluice(['verify', '--key', `${other}.pub`, '--tls-verify=false', image()]);
  assert.equal(bad.code, 1);
  const lines = bad.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, bad.stderr);
  assert.match(
    lines[0]!,
    /^sluice: verification failed: refused by requirement "sigstoreSigned by .*other\.pub with matchRepoDigestOrExact": .*signed by another key, not .*other\.pub.*; keys tried: .*other\.pub \(SHA256:/,
  );

  const json = await sluice([
    'verify',
    '--json',
    '--key',
    `${other}.pub`,
    '--key',
    `${k}.pub`,
    '--tls-verify=false',
    image(),
  ]);
  assert.equal(json.code, 0, json.stderr);
  const doc = JSON.parse(json.stdout);
  assert.equal(doc.allowed, true);
  assert.equal(doc.digest, img.digest);
  assert.equal(doc.results[0].keysTried.length, 2);
  assert.equal(doc.results[0].signatures[0].accepted, true);

  // --identity: a repository name accepts any tag of it; another name is refused.
  assert.equal(
    (await sluice(['verify', '--key', `${k}.pub`, '--identity', `${reg.host}/cli/app`, '--tls-verify=false', image()]))
      .code,
    0,
  );
  const wrongName = await sluice([
    'verify',
    '--key',
    `${k}.pub`,
    '--identity',
    `${reg.host}/cli/other:v1`,
    '--tls-verify=false',
    image(),
  ]);
  assert.equal(wrongName.code, 1);
  assert.match(wrongName.stderr, /the rule requires .*cli\/other:v1 \(exactReference\)/);
});

test('verify --policy reads a containers-policy.json; a reject scope and a bad policy are one-line refusals', async () => {
  const policy = join(dir, 'policy.json');
  await writeFile(
    policy,
    JSON.stringify({
      default: [{ type: 'reject' }],
      transports: {
        docker: {
          [`${reg.host}/cli`]: [
            { type: 'sigstoreSigned', keyPath: 'signer.pub', signedIdentity: { type: 'matchRepository' } },
          ],
        },
      },
    }),
  );
  const ok = await sluice(['verify', '--policy', policy, '--tls-verify=false', image()]);
  assert.equal(ok.code, 0, ok.stderr + ok.stdout);
  assert.match(ok.stdout, new RegExp(`policy scope: docker:${reg.host}/cli\\n`));
  await pushImage(reg.url, 'elsewhere/app', 'v1', img);
  const rejected = await sluice([
    'verify',
    '--policy',
    policy,
    '--tls-verify=false',
    `docker://${reg.host}/elsewhere/app:v1`,
  ]);
  assert.equal(rejected.code, 1);
  assert.match(rejected.stderr, /refused by requirement "reject" \(policy scope default\)/);
  await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything', keyPath: 'x' }] }));
  const bad = await sluice(['verify', '--policy', policy, '--tls-verify=false', image()]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^sluice: .*policy\.json\.default\[0\]: unknown field "keyPath"/);
  assert.equal(bad.stderr.trimEnd().split('\n').length, 1);
});

test('option mistakes are one line: a bad identity rule, a wrong password, no keys', async () => {
  const r1 = await sluice(['verify', '--key', 'x.pub', '--identity-rule', 'matchSomething', image()]);
  assert.equal(r1.code, 1);
  assert.match(r1.stderr, /^sluice: option '--identity-rule <rule>' argument 'matchSomething' is invalid/);
  const r2 = await sluice(['sign', '--key', join(dir, 'signer.key'), '--tls-verify=false', image()], {
    COSIGN_PASSWORD: 'nope',
  });
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /^sluice: .*signer\.key: wrong password \(or a damaged key file\)\n$/);
  const r3 = await sluice(['verify', image()]);
  assert.equal(r3.code, 1);
  assert.match(
    r3.stderr,
    /^sluice: say whom to trust: --key FILE \(repeatable\), --certificate-identity\(-regexp\) with --certificate-oidc-issuer\(-regexp\), --policy FILE or --trust-policy FILE\n$/,
  );
});
