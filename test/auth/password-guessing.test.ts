import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import bcrypt from 'bcryptjs';
import { BcryptPool, PoolBusyError } from '../../src/auth/bcrypt-pool.js';
import { HtpasswdStore, bcryptStats } from '../../src/auth/htpasswd.js';
import { basic, startAuthRegistry, USERS } from './fixture.js';

/** A GET from a chosen loopback source address (127.0.0.2 is another client to the server). */
function getFrom(
  url: string,
  path: string,
  headers: Record<string, string>,
  localAddress = '127.0.0.1',
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path, method: 'GET', headers, localAddress, agent: false },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

test('an unknown user costs as much bcrypt as the most expensive entry, not the last one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-cost-'));
  const file = join(dir, 'users');
  // The expensive entry first, a cheap one last: the dummy must follow the highest cost.
  await writeFile(file, `slow:${bcrypt.hashSync('s', 11)}\nfast:${bcrypt.hashSync('f', 4)}\n`);
  const store = new HtpasswdStore(file);
  try {
    const time = async (name: string) => {
      const t0 = performance.now();
      assert.equal(await store.verify(name, 'wrong'), false);
      return performance.now() - t0;
    };
    await time('fast'); // starts the worker
    const slow = median([await time('slow'), await time('slow'), await time('slow')]);
    const unknown = median([await time('nobody'), await time('nobody'), await time('nobody')]);
    const fast = median([await time('fast'), await time('fast'), await time('fast')]);
    assert.ok(slow > fast * 5, `the costs differ as written (slow ${slow.toFixed(1)} ms, fast ${fast.toFixed(1)} ms)`);
    assert.ok(
      unknown > slow * 0.6,
      `an unknown name took ${unknown.toFixed(1)} ms, a known cost-11 one ${slow.toFixed(1)} ms`,
    );
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('anonymous requests stay fast while eight clients guess passwords at bcrypt cost 12', async () => {
  // Limits high enough that every guess really runs bcrypt: this is about the event loop, not the limiter.
  const fx = await startAuthRegistry({ auth: { ratelimit: { failures: 100_000 } } });
  const file = join(fx.dir, 'htpasswd');
  await writeFile(file, `alice:${bcrypt.hashSync(USERS.alice, 12)}\n`);
  const url = fx.reg.url;
  let stop = false;
  let answered = 0;
  const deadline = Date.now() + 90_000;
  const guesser = async (i: number) => {
    for (let n = 0; n < 50 && !stop && Date.now() < deadline; n++) {
      const r = await fetch(`${url}/v2/`, {
        headers: { authorization: basic(i % 2 ? 'alice' : `nobody${i}`, `guess-${i}-${n}`) },
      });
      assert.equal(r.status, 401);
      await r.arrayBuffer();
      answered++;
    }
  };
  try {
    const guessers = Array.from({ length: 8 }, (_, i) => guesser(i));
    // Let the guessing get going before measuring.
    await new Promise((r) => setTimeout(r, 300));
    const latencies: number[] = [];
    const answeredBefore = answered;
    // At least 15 samples, and on until several guesses were answered meanwhile (bounded: 300 samples, 30 s:
    // a loaded machine can take a second per cost-12 check).
    const until = Date.now() + 30_000;
    for (let i = 0; i < 300 && (i < 15 || (answered - answeredBefore < 3 && Date.now() < until)); i++) {
      const t0 = performance.now();
      const r = await fetch(`${url}/v2/`);
      await r.arrayBuffer();
      latencies.push(performance.now() - t0);
      assert.equal(r.status, 401);
      await new Promise((res) => setTimeout(res, 50));
    }
    const during = answered - answeredBefore;
    stop = true;
    await Promise.all(guessers);
    const p50 = median(latencies);
    assert.ok(during >= 3, `the guessers were answered (so bcrypt ran) while we measured: ${during} answers`);
    assert.ok(
      p50 < 200,
      `anonymous GET /v2/ p50 was ${p50.toFixed(1)} ms while passwords were being guessed (${latencies.map((x) => x.toFixed(0)).join(' ')})`,
    );
  } finally {
    stop = true;
    await fx.close();
  }
});

test('failed logins are limited per client address and per user: 429 with Retry-After, before any bcrypt', async () => {
  const fx = await startAuthRegistry({ auth: { ratelimit: { failures: 3, window: '1m' } } });
  const url = fx.reg.url;
  const v2 = (user: string, pw: string, from?: string) =>
    getFrom(url, '/v2/', { authorization: basic(user, pw) }, from);
  try {
    // A correct login is remembered for a minute: the second one costs no bcrypt.
    assert.equal((await v2('carol', USERS.carol, '127.0.0.3')).status, 200);
    const c0 = bcryptStats.compares;
    assert.equal((await v2('carol', USERS.carol, '127.0.0.3')).status, 200);
    assert.equal(bcryptStats.compares - c0, 0, 'the success cache still works');

    for (let i = 0; i < 3; i++) assert.equal((await v2('alice', `wrong-${i}`)).status, 401);
    const before = bcryptStats.compares;
    const limited = await v2('alice', 'wrong-again');
    assert.equal(limited.status, 429, limited.body);
    assert.match(limited.body, /"code":"TOOMANYREQUESTS"/);
    const wait = Number(limited.headers['retry-after']);
    assert.ok(
      Number.isInteger(wait) && wait >= 1 && wait <= 60,
      `Retry-After: ${String(limited.headers['retry-after'])}`,
    );
    // Even the right password is refused now (a guess must learn nothing), and no bcrypt was spent on it.
    assert.equal((await v2('alice', USERS.alice)).status, 429);
    assert.equal((await v2('bob', USERS.bob)).status, 429, 'the address is limited, whatever the user');
    assert.equal(bcryptStats.compares - before, 0);

    // Another address: alice's name is limited, bob's is not.
    assert.equal(
      (await v2('alice', USERS.alice, '127.0.0.2')).status,
      429,
      'the user is limited, whatever the address',
    );
    assert.equal((await v2('bob', USERS.bob, '127.0.0.2')).status, 200);

    // The token endpoint answers the same way, in both of its forms.
    const get = await getFrom(url, '/token?service=sluice', { authorization: basic('alice', USERS.alice) });
    assert.equal(get.status, 429);
    assert.ok(Number(get.headers['retry-after']) >= 1);
    const post = await fetch(`${url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'password',
        username: 'alice',
        password: USERS.alice,
        service: 'sluice',
      }).toString(),
    });
    assert.equal(post.status, 429);
    assert.ok(Number(post.headers.get('retry-after')) >= 1);
    // Anonymous requests are not limited by anyone's failures.
    assert.equal((await getFrom(url, '/v2/', {})).status, 401);
  } finally {
    await fx.close();
  }
});

test('the bcrypt pool queues a bounded number of checks and stops its workers on close', async () => {
  const pool = new BcryptPool(1, 2);
  const hash = bcrypt.hashSync('x', 10);
  const results = await Promise.allSettled(Array.from({ length: 6 }, () => pool.compare('y', hash)));
  const busy = results.filter((r) => r.status === 'rejected' && r.reason instanceof PoolBusyError).length;
  const done = results.filter((r) => r.status === 'fulfilled' && r.value === false).length;
  // One running and two waiting are taken; the rest are refused at once.
  assert.equal(done, 3);
  assert.equal(busy, 3);
  assert.equal(await pool.compare('x', hash), true);
  await pool.close();
  await assert.rejects(pool.compare('x', hash), /closed/);
});
