import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, validateConfig } from '../../src/config/load.js';
import { isLoopback, plainHttpWarning } from '../../src/config/tls.js';
import { buildRegistry } from '../../src/registry/server.js';
import { freePort, scratch } from '../helpers/clients.js';
import { SLUICE_BIN, sluice } from '../helpers/sluice-cli.js';
import { makePki, startTlsRegistry, tlsGet, type TestPki } from '../helpers/tls.js';
import { needTools, missing } from '../helpers/tools.js';

let pki: TestPki | undefined;
const skip = missing('openssl');

before(async () => {
  if (!skip) pki = await makePki();
});
after(async () => {
  await pki?.cleanup();
});

test('http.tls: HTTPS with the configured certificate; a client that trusts the CA gets /v2/, one that does not is refused', {
  skip,
}, async () => {
  const p = pki!;
  const reg = await startTlsRegistry({ certificate: p.serverCert, key: p.serverKey });
  try {
    assert.match(reg.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const ok = await tlsGet(`${reg.url}/v2/`, { ca: p.caCert });
    assert.equal(ok.status, 200);
    assert.equal(ok.body, '{}');
    // localhost is in the certificate too.
    assert.equal((await tlsGet(`https://localhost:${reg.port}/v2/`, { ca: p.caCert })).status, 200);
    await assert.rejects(tlsGet(`${reg.url}/v2/`, { ca: p.otherCaCert }), /certificate/i);
    // Plain HTTP on the TLS port gets no registry answer.
    const plain = await fetch(`http://${reg.host}/v2/`).then(
      (r) => r.status,
      () => 'refused',
    );
    assert.notEqual(plain, 200);
  } finally {
    await reg.close();
  }
});

test("http.tls.clientcas: a client certificate from those CAs is required (none or a stranger's is refused)", {
  skip,
}, async () => {
  const p = pki!;
  const reg = await startTlsRegistry({ certificate: p.serverCert, key: p.serverKey, clientcas: [p.caCert] });
  try {
    const ok = await tlsGet(`${reg.url}/v2/`, { ca: p.caCert, cert: p.clientCert, key: p.clientKey });
    assert.equal(ok.status, 200);
    // Every route is behind the certificate, health and metrics too.
    assert.equal(
      (await tlsGet(`${reg.url}/healthz`, { ca: p.caCert, cert: p.clientCert, key: p.clientKey })).status,
      200,
    );
    await assert.rejects(tlsGet(`${reg.url}/v2/`, { ca: p.caCert }), 'no client certificate');
    await assert.rejects(tlsGet(`${reg.url}/healthz`, { ca: p.caCert }), 'no client certificate on /healthz');
    await assert.rejects(
      tlsGet(`${reg.url}/v2/`, { ca: p.caCert, cert: p.strangerCert, key: p.strangerKey }),
      'a certificate from another CA',
    );
  } finally {
    await reg.close();
  }
  // Without clientcas the same client needs no certificate: the refusal above comes from clientcas.
  const open = await startTlsRegistry({ certificate: p.serverCert, key: p.serverKey });
  try {
    assert.equal((await tlsGet(`${open.url}/v2/`, { ca: p.caCert })).status, 200);
  } finally {
    await open.close();
  }
});

test('http.tls.minimumtls: tls1.3 refuses a TLS 1.2 client; the default takes TLS 1.2', { skip }, async () => {
  const p = pki!;
  const strict = await startTlsRegistry({ certificate: p.serverCert, key: p.serverKey, minimumtls: 'tls1.3' });
  try {
    await assert.rejects(
      tlsGet(`${strict.url}/v2/`, { ca: p.caCert, maxVersion: 'TLSv1.2' }),
      /version|protocol|handshake|alert/i,
    );
    assert.equal((await tlsGet(`${strict.url}/v2/`, { ca: p.caCert, maxVersion: 'TLSv1.3' })).status, 200);
  } finally {
    await strict.close();
  }
  const lax = await startTlsRegistry({ certificate: p.serverCert, key: p.serverKey, minimumtls: 'tls1.2' });
  try {
    assert.equal((await tlsGet(`${lax.url}/v2/`, { ca: p.caCert, maxVersion: 'TLSv1.2' })).status, 200);
  } finally {
    await lax.close();
  }
  assert.throws(
    () => validateConfig({ http: { tls: { certificate: 'c', key: 'k', minimumtls: 'tls1.0' } } }),
    /http\.tls\.minimumtls: expected tls1\.2 or tls1\.3/,
  );
});

test('http.tls problems stop the start naming the key: a missing file, a key that does not fit the certificate, a missing key', {
  skip,
}, async () => {
  const p = pki!;
  const build = (tls: Record<string, unknown>) =>
    buildRegistry({ config: validateConfig({ log: { level: 'silent' }, http: { tls } }).config, logger: false });
  assert.throws(
    () => build({ certificate: join(p.dir, 'absent.crt'), key: p.serverKey }),
    (e: Error) => e instanceof ConfigError && /^http\.tls\.certificate: .*absent\.crt does not exist$/.test(e.message),
  );
  assert.throws(() => build({ certificate: p.serverCert, key: p.dir }), /http\.tls\.key: .* is a directory/);
  assert.throws(
    () => build({ certificate: p.serverCert, key: p.clientKey }),
    /http\.tls: .*cannot be used: .*key values mismatch/,
  );
  assert.throws(
    () => build({ certificate: p.serverCert, key: p.serverKey, clientcas: [join(p.dir, 'nope.crt')] }),
    /http\.tls\.clientcas\.0: .*nope\.crt does not exist/,
  );
  assert.throws(() => validateConfig({ http: { tls: { certificate: p.serverCert } } }), /http\.tls\.key: required/);
});

test('sluice serve -c: http.tls paths relative to the config file, from another working directory; HTTPS answers', {
  skip,
}, async (t) => {
  if (!needTools(t, 'openssl')) return;
  const p = pki!;
  const s = await scratch('sluice-tls-serve-');
  const child = { proc: undefined as ReturnType<typeof spawn> | undefined };
  try {
    const conf = join(s.dir, 'etc');
    await mkdir(join(conf, 'certs'), { recursive: true });
    await copyFile(p.serverCert, join(conf, 'certs', 'server.crt'));
    await copyFile(p.serverKey, join(conf, 'certs', 'server.key'));
    const port = await freePort();
    await writeFile(
      join(conf, 'config.yml'),
      `log: {level: info}\nhttp:\n  addr: 127.0.0.1:${port}\n  tls:\n    certificate: certs/server.crt\n    key: ./certs/server.key\nstorage:\n  filesystem:\n    rootdirectory: data\n`,
    );
    // The working directory holds none of those files.
    const proc = spawn(process.execPath, [SLUICE_BIN, 'serve', '-c', join(conf, 'config.yml')], {
      cwd: '/',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.proc = proc;
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    let status: number | undefined;
    for (let i = 0; i < 100 && status === undefined && proc.exitCode === null; i++) {
      status = await tlsGet(`https://127.0.0.1:${port}/v2/`, { ca: p.caCert }).then(
        (r) => r.status,
        () => undefined,
      );
      if (status === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 200, `sluice serve did not answer over HTTPS:\n${out}`);
    // Storage went next to the config too, and the start line says where.
    assert.match(out, new RegExp(`"root":"${join(conf, 'data').replace(/[/.]/g, '\\$&')}"`));
    assert.doesNotMatch(out, /plain HTTP/);
  } finally {
    if (child.proc && child.proc.exitCode === null) {
      const exited = new Promise((r) => child.proc!.once('exit', r));
      child.proc.kill('SIGTERM');
      await exited;
    }
    await s.cleanup();
  }
});

test('plain HTTP on an address other machines reach is warned about; loopback and TLS are not', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost']) {
    assert.equal(isLoopback(h), true, h);
    assert.equal(plainHttpWarning(h, undefined), undefined, h);
  }
  for (const h of ['0.0.0.0', '::', '10.0.0.5', 'registry.example.com'])
    assert.match(plainHttpWarning(h, undefined) ?? '', /plain HTTP on .*http\.tls/, h);
  assert.equal(plainHttpWarning('0.0.0.0', { certificate: 'c', key: 'k' }), undefined);
});

test('sluice serve warns at start when plain HTTP would be served off loopback', async () => {
  const s = await scratch('sluice-plain-');
  try {
    // 192.0.2.1 (TEST-NET-1) is on no interface here: the start warns, then cannot bind, so nothing listens beyond loopback.
    const r = await sluice(['serve', '--addr', '192.0.2.1:5999', '--root', join(s.dir, 'data')]);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stdout + r.stderr,
      /serving plain HTTP on 192\.0\.2\.1: passwords and tokens cross the network unencrypted/,
    );
    const port = await freePort();
    const quiet = spawn(
      process.execPath,
      [SLUICE_BIN, 'serve', '--addr', `127.0.0.1:${port}`, '--root', join(s.dir, 'data')],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    quiet.stdout!.on('data', (d) => (out += d));
    quiet.stderr!.on('data', (d) => (out += d));
    const exited = new Promise((res) => quiet.once('exit', res));
    try {
      for (let i = 0; i < 100 && !out.includes('listening') && quiet.exitCode === null; i++)
        await new Promise((res) => setTimeout(res, 100));
      assert.match(out, /listening/);
      assert.doesNotMatch(out, /plain HTTP/);
    } finally {
      quiet.kill('SIGTERM');
      await exited;
    }
  } finally {
    await s.cleanup();
  }
});
