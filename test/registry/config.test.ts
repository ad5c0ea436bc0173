import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseAddr } from '../../src/config/load.js';
import { RegistryContext } from '../../src/registry/context.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { Metrics } from '../../src/registry/metrics.js';
import { sluice } from '../helpers/sluice-cli.js';

const DEBIAN_CONFIG = '/etc/docker/registry/config.yml';

async function scratch(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'sluice-config-'));
}

async function writeConfig(dir: string, text: string): Promise<string> {
  const file = join(dir, 'config.yml');
  await writeFile(file, text);
  return file;
}

test("Debian's Distribution config.yml (paths adjusted) loads with its meaning", { skip: existsSync(DEBIAN_CONFIG) ? false : `${DEBIAN_CONFIG} not present (apt-get install docker-registry)` }, async () => {
  const dir = await scratch();
  try {
    const text = (await readFile(DEBIAN_CONFIG, 'utf8')).replace('/var/lib/docker-registry', join(dir, 'data')).replace('path: /etc/docker/registry', `path: ${join(dir, 'htpasswd')}`);
    const { config, warnings } = await loadConfig(await writeConfig(dir, text), {}, {});
    assert.deepEqual(warnings, []);
    assert.equal(config.storage.filesystem?.rootdirectory, join(dir, 'data'));
    assert.equal(config.storage.delete?.enabled, true);
    assert.equal(config.http.addr, ':5000');
    // Distribution's ":5000" means every interface; Sluice binds loopback unless told otherwise.
    assert.deepEqual(parseAddr(config.http.addr), { host: '127.0.0.1', port: 5000 });
    assert.deepEqual(config.http.headers, { 'X-Content-Type-Options': ['nosniff'] });
    assert.equal(config.auth?.htpasswd?.path, join(dir, 'htpasswd'));
    assert.equal(config.log.level, 'info');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('Distribution keys: version, http.addr, rootdirectory, delete, validation.manifests.indexes, log.level', async () => {
  const dir = await scratch();
  try {
    const file = await writeConfig(
      dir,
      `version: 0.1
log:
  level: debug
http:
  addr: 127.0.0.1:5123
storage:
  filesystem:
    rootdirectory: ${dir}/store
  delete:
    enabled: true
validation:
  manifests:
    indexes:
      platforms: list
      platformlist:
        - architecture: amd64
          os: linux
        - architecture: arm64
          os: linux
          variant: v8
`,
    );
    const { config, warnings } = await loadConfig(file, {}, {});
    assert.deepEqual(warnings, []);
    assert.equal(config.version, 0.1);
    assert.equal(config.log.level, 'debug');
    assert.equal(config.http.addr, '127.0.0.1:5123');
    assert.equal(config.storage.filesystem?.rootdirectory, `${dir}/store`);
    const ctx = new RegistryContext(new FilesystemDriver(dir), config, new Metrics(false));
    assert.equal(ctx.deleteEnabled, true);
    assert.deepEqual(ctx.indexPolicy, {
      mode: 'list',
      platforms: [
        { architecture: 'amd64', os: 'linux' },
        { architecture: 'arm64', os: 'linux', variant: 'v8' },
      ],
    });
    const defaults = await loadConfig(undefined, {}, {});
    const dctx = new RegistryContext(new FilesystemDriver(dir), defaults.config, new Metrics(false));
    assert.equal(dctx.deleteEnabled, false);
    assert.deepEqual(dctx.indexPolicy, { mode: 'all' });
    assert.equal(defaults.config.limits.manifestbytes, 4 * 1024 * 1024);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('unknown keys are warned with their path, and ignored', async () => {
  const dir = await scratch();
  try {
    const file = await writeConfig(dir, `notakey: 1\nhttp:\n  addr: 127.0.0.1:5000\n  bogus: true\nstorage:\n  delete:\n    enabled: true\n    soon: yes\n`);
    const { config, warnings } = await loadConfig(file, {}, {});
    assert.equal(config.storage.delete?.enabled, true);
    assert.deepEqual([...warnings].sort(), [
      'unknown config key http.bogus is ignored',
      'unknown config key notakey is ignored',
      'unknown config key storage.delete.soon is ignored',
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('invalid values fail with the key path in the message', async () => {
  const dir = await scratch();
  try {
    const cases: [string, string][] = [
      ['storage:\n  delete:\n    enabled: "sometimes"\n', 'storage.delete.enabled'],
      ['validation:\n  manifests:\n    indexes:\n      platforms: some\n', 'validation.manifests.indexes.platforms'],
      ['validation:\n  manifests:\n    indexes:\n      platforms: list\n      platformlist:\n        - os: linux\n', 'validation.manifests.indexes.platformlist.0.architecture'],
      ['log:\n  level: loud\n', 'log.level'],
      ['http:\n  addr: [1, 2]\n', 'http.addr'],
      ['limits:\n  manifestbytes: -1\n', 'limits.manifestbytes'],
      // Accepting Distribution's test-only auth and ignoring it would leave the registry open.
      ['auth:\n  silly:\n    realm: x\n    service: y\n', 'auth.silly'],
    ];
    for (const [text, key] of cases) {
      const file = await writeConfig(dir, text);
      await assert.rejects(loadConfig(file, {}, {}), (e: Error) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.ok(e.message.includes(key), `"${e.message}" should name ${key}`);
        return true;
      });
    }
    await assert.rejects(loadConfig(await writeConfig(dir, 'http: [unclosed\n'), {}, {}), /not valid YAML/);
    await assert.rejects(loadConfig(join(dir, 'absent.yml'), {}, {}), /cannot read config/);
    // The CLI prints one line and exits non-zero.
    const r = await sluice(['serve', '--config', await writeConfig(dir, 'log:\n  level: loud\n')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^sluice: invalid config: log\.level: .*\n$/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('environment overrides (SLUICE_ and REGISTRY_), and --addr/--root over both', async () => {
  const dir = await scratch();
  try {
    const file = await writeConfig(dir, `http:\n  addr: 127.0.0.1:5000\nstorage:\n  filesystem:\n    rootdirectory: /from/file\n  delete:\n    enabled: false\nlog:\n  level: info\n`);
    const env = { SLUICE_STORAGE_DELETE_ENABLED: 'true', REGISTRY_LOG_LEVEL: 'warn', REGISTRY_HTTP_ADDR: '127.0.0.1:6000', REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/from/env' };
    const a = await loadConfig(file, {}, env);
    assert.equal(a.config.storage.delete?.enabled, true);
    assert.equal(a.config.log.level, 'warn');
    assert.equal(a.config.http.addr, '127.0.0.1:6000');
    assert.equal(a.config.storage.filesystem?.rootdirectory, '/from/env');
    const b = await loadConfig(file, { addr: '127.0.0.1:7000', root: '/from/flag' }, env);
    assert.equal(b.config.http.addr, '127.0.0.1:7000');
    assert.equal(b.config.storage.filesystem?.rootdirectory, '/from/flag');
    await assert.rejects(loadConfig(file, {}, { SLUICE_STORAGE_DELETE_ENABLED: 'maybe' }), /storage\.delete\.enabled/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('durations in Distribution syntax', async () => {
  const { parseDuration, isDuration } = await import('../../src/config/duration.js');
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('168h'), 168 * 3_600_000);
  assert.equal(parseDuration('1h30m'), 90 * 60_000);
  assert.equal(parseDuration('10'), 10_000);
  for (const bad of ['', 'soon', '10x', 'h', '-5s']) assert.equal(isDuration(bad), false, bad);
  const dir = await scratch();
  try {
    const file = await writeConfig(dir, 'storage:\n  maintenance:\n    uploadpurging:\n      enabled: true\n      age: 168h\n      interval: 24h\n      dryrun: false\nhttp:\n  draintimeout: 60s\n');
    const { config, warnings } = await loadConfig(file, {}, {});
    assert.deepEqual(warnings, []);
    assert.equal(config.storage.maintenance?.uploadpurging?.age, '168h');
    await assert.rejects(loadConfig(await writeConfig(dir, 'http:\n  draintimeout: soon\n'), {}, {}), /http\.draintimeout/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
