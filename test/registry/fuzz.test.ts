import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import fc from 'fast-check';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeImage, makeMultiArch, pushImage, type TestImage, type TestIndex } from '../helpers/images.js';
import { assertIntact, startSession } from '../helpers/oci-http.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';

// A fixed seed, so a failure found once is found again; SLUICE_FUZZ_SEED explores others.
const SEED = Number(process.env['SLUICE_FUZZ_SEED'] ?? 20261207);
// Generous: the machine is shared, and a request that waits on a body that never comes ends by its own timeout.
const REQUEST_TIMEOUT_MS = 30_000;

interface Stored {
  repo: string;
  tag: string;
  image: TestImage | TestIndex;
}

/** What a fuzzed request is: everything a client controls. */
interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
  /** How the body's length is announced: truthfully, chunked, or a Content-Length that lies. */
  framing: 'length' | 'chunked' | 'longer' | 'shorter';
}

interface FuzzResponse {
  status: number;
  contentType: string;
  body: Buffer;
}

/** Only printable ASCII goes into a request line; anything else is percent-encoded as a client would. */
function printable(s: string): string {
  return s.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));
}

/** Sends a request whose framing is honest, through node:http (which would refuse to send a lying one). */
function send(url: string, r: FuzzRequest): Promise<FuzzResponse> {
  const u = new URL(url);
  const headers: Record<string, string> = { ...r.headers };
  // Said outright: node:http sends a GET or HEAD body unframed otherwise, which is two requests, not one.
  if (r.framing === 'length') headers['content-length'] = String(r.body.length);
  else headers['transfer-encoding'] = 'chunked';
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, method: r.method, path: r.path, headers, timeout: REQUEST_TIMEOUT_MS },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`no answer to ${r.method} ${r.path} within ${REQUEST_TIMEOUT_MS} ms`)),
    );
    req.on('error', reject);
    req.end(r.body.length ? r.body : undefined);
  });
}

/**
 * Sends a request whose Content-Length lies, over a raw socket, and returns the status line's code if an
 * answer came (the server may rightly just close: a body shorter than announced never completes).
 */
function sendLying(url: string, r: FuzzRequest): Promise<number | undefined> {
  const u = new URL(url);
  const claimed =
    r.framing === 'longer'
      ? r.body.length + 1 + (r.body.length % 7)
      : Math.max(0, r.body.length - 1 - (r.body.length % 5));
  const head = [
    `${r.method} ${r.path} HTTP/1.1`,
    `host: ${u.host}`,
    `content-length: ${claimed}`,
    'connection: close',
    ...Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`),
  ];
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => sock.destroy(), REQUEST_TIMEOUT_MS);
    sock.on('connect', () => {
      sock.write(`${head.join('\r\n')}\r\n\r\n`);
      // A body shorter than announced is followed by the end of the stream: the server must give up on it.
      sock.end(r.body);
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (e: NodeJS.ErrnoException) =>
      e.code === 'ECONNRESET' || e.code === 'EPIPE' ? undefined : reject(e),
    );
    sock.on('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(Buffer.concat(chunks).toString('latin1'));
      resolve(m ? Number(m[1]) : undefined);
    });
  });
}

/** A request in one line, long values cut, for failure messages. */
function describe(r: FuzzRequest): string {
  const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, v.slice(0, 100)]));
  return `${r.method} ${r.path.slice(0, 300)} (${JSON.stringify(headers)}, ${r.body.length} bytes, ${r.framing})`;
}

/** Asserts one answer is what bad input deserves: a proper status, never 5xx, and the OCI error JSON with an error. */
function checkAnswer(r: FuzzRequest, res: FuzzResponse): void {
  const what = describe(r);
  assert.ok(
    res.status >= 200 && res.status < 500,
    `${what} answered ${res.status}: ${res.body.toString('utf8').slice(0, 300)}`,
  );
  if (res.status < 400 || r.method === 'HEAD') return;
  let doc: { errors?: { code?: unknown; message?: unknown }[] };
  try {
    doc = JSON.parse(res.body.toString('utf8')) as typeof doc;
  } catch {
    assert.fail(
      `${what} answered ${res.status} with a body that is not JSON: ${res.body.toString('utf8').slice(0, 300)}`,
    );
  }
  assert.ok(
    Array.isArray(doc.errors) && doc.errors.length > 0,
    `${what}: no errors list in ${res.body.toString('utf8').slice(0, 300)}`,
  );
  for (const e of doc.errors) {
    assert.equal(typeof e.code, 'string', `${what}: error without a code`);
    assert.equal(typeof e.message, 'string', `${what}: error without a message`);
  }
}

/** The requests a fuzz run draws from: names, references, queries, headers and bodies around what is stored. */
function requests(stored: Stored[], sessions: string[]): fc.Arbitrary<FuzzRequest> {
  const images = stored.flatMap((s) => ('images' in s.image ? [s.image, ...s.image.images] : [s.image])) as (
    | TestImage
    | TestIndex
  )[];
  const storedDigests = [
    ...images.map((i) => i.digest),
    ...images.flatMap((i) =>
      'config' in i ? [i.config.descriptor.digest, ...i.layers.map((l) => l.descriptor.digest)] : [],
    ),
  ];
  const junk = fc.string({ maxLength: 40 }).map(printable);
  const name = fc.oneof(
    fc.constantFrom(...stored.map((s) => s.repo), 'fuzz/new', 'library/nginx', 'docker.io/library/nginx'),
    fc.constantFrom(
      '',
      'UPPER/case',
      'a//b',
      '../../etc',
      '%2e%2e/%2e%2e',
      'a/../b',
      'a/./b',
      '-lead',
      'a%00b',
      'a%2fb',
      '%zz',
      '%C3%A9',
      'a b',
      '.',
      '..',
      '_',
      'a/',
    ),
    fc.integer({ min: 200, max: 3000 }).map((n) => 'a'.repeat(n)),
    fc
      .array(fc.constantFrom('a', 'b', '..', '.', '_x', 'x-y', '%2F', ''), { minLength: 1, maxLength: 8 })
      .map((xs) => xs.join('/')),
    junk,
  );
  const digest = fc.oneof(
    fc.constantFrom(...storedDigests),
    fc.constantFrom(
      digestOf(Buffer.from('never stored')),
      'sha256:short',
      `sha256:${'A'.repeat(64)}`,
      `sha512:${'a'.repeat(128)}`,
      `sha512:${'a'.repeat(64)}`,
      `md5:${'a'.repeat(32)}`,
      'sha256:../../../etc/passwd',
      `sha256:${'a'.repeat(64)}/..`,
      `sha256%3A${'b'.repeat(64)}`,
      `sha256:${'c'.repeat(5000)}`,
    ),
    junk,
  );
  const tag = fc.oneof(
    fc.constantFrom(...stored.map((s) => s.tag), 'latest', 'v9', '-x', '.x', 'a'.repeat(129), 'a:b', '%00', '..'),
    junk,
  );
  const reference = fc.oneof(tag, digest);
  const number = fc.constantFrom('-1', '0', '1', '2', '100', '1e9', '99999999999999999999', 'abc', '', '0x10', '1.5');
  const query = fc.oneof(
    fc.constant(''),
    fc.tuple(number, fc.option(junk)).map(([n, last]) => `?n=${n}${last !== null ? `&last=${last}` : ''}`),
    digest.map((d) => `?digest=${d}`),
    fc.tuple(digest, name).map(([d, from]) => `?mount=${d}&from=${from}`),
    digest.map((d) => `?mount=${d}`),
    fc.constantFrom(
      '?ns=docker.io',
      '?ns=',
      '?artifactType=x',
      `?x=${'y'.repeat(10_000)}`,
      '?digest=',
      '?digest=a&digest=b',
      '?%zz',
    ),
  );
  const endpoint = fc.oneof(
    reference.map((r) => `manifests/${r}`),
    digest.map((d) => `blobs/${d}`),
    fc.constant('blobs/uploads/'),
    fc.constant('blobs/uploads'),
    fc.oneof(fc.constantFrom(...sessions), junk, fc.constant('../../x')).map((id) => `blobs/uploads/${id}`),
    fc.constant('tags/list'),
    digest.map((d) => `referrers/${d}`),
    junk,
  );
  const path = fc.oneof(
    { weight: 8, arbitrary: fc.tuple(name, endpoint, query).map(([n, e, q]) => `/v2/${n}/${e}${q}`) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.constantFrom('/v2/', '/v2', '/v2/_catalog', '/', '/healthz', '/v2/_catalog/x', '/v1/x', '//v2/', '/v2//'),
          query,
        )
        .map(([p, q]) => p + q),
    },
    { weight: 1, arbitrary: junk.map((j) => `/v2/${j}`) },
  );
  const contentType = fc.constantFrom(
    MediaType.OciManifest,
    MediaType.OciIndex,
    MediaType.DockerManifest,
    MediaType.DockerManifestList,
    'application/json',
    'application/octet-stream',
    'text/plain',
    'application/vnd.oci.image.manifest.v1+json; charset=utf-8',
    'x'.repeat(2000),
    '',
  );
  const contentRange = fc.oneof(
    fc.tuple(fc.integer({ min: -5, max: 100 }), fc.integer({ min: -5, max: 100 })).map(([a, b]) => `${a}-${b}`),
    fc.constantFrom('bytes=0-10', '0-99999999999999999999', '5', '-', 'a-b', '0-0', ''),
  );
  const range = fc.oneof(
    fc.tuple(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: 5000 })).map(([a, b]) => `bytes=${a}-${b}`),
    fc.constantFrom(
      'bytes=-1',
      'bytes=0-',
      'bytes=0-0,5-6',
      'bytes=a-b',
      'bytes=99999999999999999999-',
      'items=0-1',
      'bytes=',
      '-',
    ),
  );
  const authorization = fc.oneof(
    fc.constantFrom(
      'Bearer junk',
      'Bearer ',
      'Basic !!!',
      `Basic ${Buffer.from('a:b').toString('base64')}`,
      `Basic ${Buffer.from('nocolon').toString('base64')}`,
      'Negotiate x',
      `Bearer ${'x'.repeat(8000)}`,
    ),
    junk.map((j) => `Bearer ${j}`),
  );
  const accept = fc.constantFrom(
    MediaType.OciManifest,
    MediaType.OciIndex,
    MediaType.DockerManifest,
    '*/*',
    'text/html',
    'x'.repeat(3000),
  );
  const headers = fc
    .record(
      {
        'content-type': contentType,
        'content-range': contentRange,
        range,
        authorization,
        accept,
        'if-none-match': fc.oneof(
          digest.map((d) => `"${d}"`),
          junk,
        ),
      },
      { requiredKeys: [] },
    )
    .map((h) => Object.fromEntries(Object.entries(h).filter(([, v]) => v !== '')) as Record<string, string>);
  // Manifests that are almost right: each must be refused without touching what is stored.
  const manifests = images.map((i) => JSON.parse(i.manifest.toString('utf8')) as Record<string, unknown>);
  const nearManifest = fc
    .tuple(
      fc.constantFrom(...manifests),
      fc.constantFrom('config', 'layers', 'manifests', 'mediaType', 'schemaVersion', 'subject'),
      fc.constantFrom(null, 1, 'x', [], {}, { digest: 'sha256:zz', size: -1 }),
    )
    .map(([m, k, v]) => Buffer.from(JSON.stringify({ ...m, [k]: v })));
  const body = fc.oneof(
    { weight: 3, arbitrary: fc.constant(Buffer.alloc(0)) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)) },
    { weight: 2, arbitrary: nearManifest },
    { weight: 1, arbitrary: fc.json({ maxDepth: 3 }).map((j) => Buffer.from(j)) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        Buffer.from('{"schemaVersion": 2, "mediaType": '),
        Buffer.from('[]'),
        Buffer.from('null'),
        Buffer.from('{}'),
      ),
    },
  );
  const method = fc.constantFrom('GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'PROPFIND');
  const framing = fc.constantFrom<FuzzRequest['framing']>(
    'length',
    'length',
    'length',
    'length',
    'chunked',
    'longer',
    'shorter',
  );
  return fc.record({ method, path, headers, body, framing }).map((r) => ({ ...r, path: printable(r.path) }));
}

/** The stored images' tags and the catalog, as clients see them. */
async function listing(reg: TestRegistry, stored: Stored[]): Promise<unknown> {
  const tags: Record<string, unknown> = {};
  for (const s of stored) tags[s.repo] = await (await fetch(`${reg.url}/v2/${s.repo}/tags/list`)).json();
  return tags;
}

/** Runs `numRuns` fuzzed requests against a registry and checks each answer and the server's survival. */
async function fuzz(
  t: { diagnostic(m: string): void },
  reg: TestRegistry,
  stored: Stored[],
  sessions: string[],
  numRuns: number,
): Promise<void> {
  t.diagnostic(`fast-check seed ${SEED}, ${numRuns} requests (SLUICE_FUZZ_SEED=<n> to try another)`);
  const details = await fc.check(
    fc.asyncProperty(requests(stored, sessions), async (r) => {
      if (r.framing === 'longer' || r.framing === 'shorter') {
        const status = await sendLying(reg.url, r);
        if (status !== undefined) assert.ok(status < 500, `${describe(r)} answered ${status}`);
      } else {
        const res = await send(reg.url, r).catch((e: Error) => assert.fail(`${describe(r)}: ${e.message}`));
        checkAnswer(r, res);
      }
    }),
    { seed: SEED, numRuns, endOnFailure: true },
  );
  // The failing request's own message says what was sent and what came back; fast-check's dump of it is pages long.
  if (details.failed)
    assert.fail(
      `seed ${SEED}, request ${details.numRuns}: ${(details.errorInstance as Error)?.message ?? String(details.errorInstance)}`,
    );
}

/** Stores a few images, so reads hit real content and writes meet it. */
async function storeImages(reg: TestRegistry): Promise<Stored[]> {
  const stored: Stored[] = [
    { repo: 'good/app', tag: 'v1', image: await makeImage({ label: 'fuzz-a' }) },
    { repo: 'good/app', tag: 'v2', image: await makeImage({ label: 'fuzz-b', format: 'docker' }) },
    { repo: 'multi/x', tag: 'latest', image: await makeMultiArch('fuzz') },
  ];
  for (const s of stored) await pushImage(reg.url, s.repo, s.tag, s.image);
  return stored;
}

/** Every stored image still pulls byte for byte, the tag lists are as before, and the server still answers. */
async function assertUnchanged(reg: TestRegistry, stored: Stored[], before: unknown): Promise<void> {
  assert.equal((await fetch(`${reg.url}/v2/`)).status, 200, 'the server still answers');
  for (const s of stored) await assertIntact(reg.url, s.repo, s.tag, s.image);
  assert.deepEqual(await listing(reg, stored), before);
}

test('fuzzed HTTP requests never get a 5xx, always get the OCI error JSON, and change nothing stored', {
  timeout: 600_000,
}, async (t) => {
  // Deletion stays off: a DELETE of a stored digest would be a legitimate change, not a bug.
  const reg = await startRegistry({ storage: { delete: { enabled: false } } });
  t.after(() => reg.close());
  const stored = await storeImages(reg);
  const sessions = [
    new URL(await startSession(reg.url, 'good/app')).pathname.split('/').pop()!,
    new URL(await startSession(reg.url, 'fuzz/new')).pathname.split('/').pop()!,
  ];
  const before = await listing(reg, stored);
  await fuzz(t, reg, stored, sessions, 1000);
  await assertUnchanged(reg, stored, before);
});

test('fuzzed HTTP requests against a read-only registry never get a 5xx and change nothing stored', {
  timeout: 600_000,
}, async (t) => {
  const writer = await startRegistry({ storage: { delete: { enabled: false } } });
  const stored = await storeImages(writer);
  const session = new URL(await startSession(writer.url, 'good/app')).pathname.split('/').pop()!;
  // The same storage, served read-only.
  const reg = await startRegistry(
    { storage: { delete: { enabled: false }, maintenance: { readonly: { enabled: true } } } },
    writer.root,
  );
  t.after(async () => {
    await reg.close();
    await writer.close();
  });
  const before = await listing(reg, stored);
  await fuzz(t, reg, stored, [session], 300);
  await assertUnchanged(reg, stored, before);
});
