import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scratch } from '../helpers/clients.js';
import { startRegistry } from '../helpers/registry.js';
import { run } from '../helpers/tools.js';
import { writeHtpasswd, USERS } from './fixture.js';

const BIN = resolve(fileURLToPath(new URL('../../../bin/sluice.js', import.meta.url)));

test('auth files that are missing or are folders stop the start with an error naming the config key', async () => {
  const s = await scratch();
  const data = join(s.dir, 'data');
  const users = join(s.dir, 'users');
  await writeHtpasswd(users, USERS);
  await mkdir(join(s.dir, 'folder'));
  const folder = join(s.dir, 'folder');
  const missing = join(s.dir, 'missing.htpasswd');
  const start = (cfg: Record<string, unknown>) => startRegistry(cfg, data);
  try {
    await assert.rejects(start({ auth: { htpasswd: { path: missing } } }), {
      message: `auth.htpasswd.path: ${missing} does not exist`,
    });
    await assert.rejects(start({ auth: { htpasswd: { path: folder } } }), {
      message: `auth.htpasswd.path: ${folder} is a directory`,
    });
    await assert.rejects(start({ auth: { htpasswd: { path: users }, issuer: { key: folder } } }), {
      message: `auth.issuer.key: ${folder} is a directory`,
    });
    await assert.rejects(start({ auth: { robots: { path: folder } } }), {
      message: `auth.robots.path: ${folder} is a directory`,
    });
    const jwks = join(s.dir, 'nope.json');
    await assert.rejects(start({ auth: { token: { realm: 'https://a/token', service: 's', issuer: 'i', jwks } } }), {
      message: `auth.token.jwks: ${jwks} does not exist`,
    });
    const bundle = join(s.dir, 'nope.crt');
    await assert.rejects(
      start({ auth: { token: { realm: 'https://a/token', service: 's', issuer: 'i', rootcertbundle: bundle } } }),
      {
        message: `auth.token.rootcertbundle: ${bundle} does not exist`,
      },
    );
    const audit = join(s.dir, 'no-such-folder', 'audit.jsonl');
    await assert.rejects(start({ auth: { htpasswd: { path: users } }, audit: { path: audit } }), {
      message: `audit.path: ${audit} does not exist`,
    });
    // A robots file that does not exist yet is fine: `sluice robot create` makes it.
    const ok = await start({ auth: { robots: { path: join(s.dir, 'robots.json') } } });
    await ok.close();
  } finally {
    await s.cleanup();
  }
});

test('sluice serve prints one line naming auth.htpasswd.path when the file is missing', async () => {
  const s = await scratch();
  try {
    const cfg = join(s.dir, 'config.yml');
    await writeFile(
      cfg,
      [
        'version: 0.1',
        'log: {level: error}',
        `storage: {filesystem: {rootdirectory: ${join(s.dir, 'data')}}}`,
        'http: {addr: 127.0.0.1:0}',
        'auth:',
        '  htpasswd: {realm: r, path: ./missing.htpasswd}',
        '',
      ].join('\n'),
    );
    // Run from the config's folder, so the relative path means the same file however config loading resolves it.
    const r = await run('node', [BIN, 'serve', '--config', cfg], { cwd: s.dir, timeoutMs: 30_000 });
    assert.notEqual(r.code, 0);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^sluice: auth\.htpasswd\.path: \S*missing\.htpasswd does not exist$/);
    assert.doesNotMatch(r.stderr, /ENOENT/);
  } finally {
    await s.cleanup();
  }
});
